//! Glob patterns, as the Redis `KEYS` command understands them.
//!
//! Chapter 12, "Three servers", uses it in the redis example. evio's own
//! redis example (`examples/redis-server/main.go`) has no `KEYS`; this
//! follows Redis's `stringmatchlen` (`util.c`): `*` is any run of bytes, `?`
//! one byte, `[abc]`, `[^abc]` and `[a-z]` a class, `\x` a literal `x`.
//!
//! Redis matches recursively, and a pattern such as `a*a*a*...*a` against
//! a key of many `a`s took seconds, exponential in the pattern's length
//! (redis/redis issue #5660; CVE-2022-36021, pull request #11858). We use
//! the classic iterative match that remembers only the last `*`: each byte
//! of the key is compared at most once per pattern position, so the time is
//! bounded by `pattern.len() * key.len()`, whatever the client sends.

/// Whether `key` matches the glob `pattern` (bytes, case-sensitive).
pub fn glob_match(pattern: &[u8], key: &[u8]) -> bool {
    let (mut p, mut k) = (0, 0);
    // After a mismatch, retry from the last `*`, letting it eat one more byte.
    let mut star: Option<(usize, usize)> = None;
    while k < key.len() {
        if p < pattern.len() {
            if pattern[p] == b'*' {
                star = Some((p + 1, k));
                p += 1;
                continue;
            }
            if let Some(next) = match_one(pattern, p, key[k]) {
                p = next;
                k += 1;
                continue;
            }
        }
        match star {
            Some((after_star, eaten)) => {
                star = Some((after_star, eaten + 1));
                p = after_star;
                k = eaten + 1;
            }
            None => return false,
        }
    }
    pattern[p..].iter().all(|&b| b == b'*')
}

/// Matches one byte against the pattern element at `p` (not a `*`); returns
/// the index of the next element on a match.
fn match_one(pattern: &[u8], p: usize, c: u8) -> Option<usize> {
    match pattern[p] {
        b'?' => Some(p + 1),
        b'\\' if p + 1 < pattern.len() => (pattern[p + 1] == c).then_some(p + 2),
        b'[' => {
            let mut i = p + 1;
            let negate = pattern.get(i) == Some(&b'^');
            if negate {
                i += 1;
            }
            let mut hit = false;
            while i < pattern.len() && pattern[i] != b']' {
                if pattern[i] == b'\\' && i + 1 < pattern.len() {
                    hit |= pattern[i + 1] == c;
                    i += 2;
                } else if i + 2 < pattern.len() && pattern[i + 1] == b'-' && pattern[i + 2] != b']'
                {
                    let (lo, hi) = (
                        pattern[i].min(pattern[i + 2]),
                        pattern[i].max(pattern[i + 2]),
                    );
                    hit |= (lo..=hi).contains(&c);
                    i += 3;
                } else {
                    hit |= pattern[i] == c;
                    i += 1;
                }
            }
            // An unterminated `[` runs to the end of the pattern, as in Redis.
            (hit != negate).then_some((i + 1).min(pattern.len()))
        }
        literal => (literal == c).then_some(p + 1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ch12_glob_examples_from_the_redis_docs() {
        // The examples of https://redis.io/commands/keys/
        let yes = |p: &str, k: &str| assert!(glob_match(p.as_bytes(), k.as_bytes()), "{p} ~ {k}");
        let no = |p: &str, k: &str| assert!(!glob_match(p.as_bytes(), k.as_bytes()), "{p} !~ {k}");
        for k in ["hello", "hallo", "hxllo"] {
            yes("h?llo", k);
        }
        yes("h*llo", "hllo");
        yes("h*llo", "heeeello");
        yes("h[ae]llo", "hello");
        no("h[ae]llo", "hillo");
        yes("h[^e]llo", "hallo");
        no("h[^e]llo", "hello");
        yes("h[a-b]llo", "hbllo");
        no("h[a-b]llo", "hcllo");
        yes("*", "");
        yes("key:*", "key:__rand_int__");
        no("key:*", "kex:1");
        yes("a\\*b", "a*b");
        no("a\\*b", "axb");
        yes("*a*a*a*a*b", &format!("{}b", "a".repeat(40)));
        no("*a*a*a*a*b", &"a".repeat(40));
    }

    /// The obvious recursive matcher, exponential but clearly right.
    fn reference(p: &[u8], k: &[u8]) -> bool {
        match p.first() {
            None => k.is_empty(),
            Some(b'*') => (0..=k.len()).any(|i| reference(&p[1..], &k[i..])),
            Some(_) => match (k.first(), k.first().and_then(|&c| match_one(p, 0, c))) {
                (Some(_), Some(next)) => reference(&p[next..], &k[1..]),
                _ => false,
            },
        }
    }

    proptest::proptest! {
        #[test]
        fn ch12_glob_agrees_with_the_recursive_matcher(
            p in "[ab*?\\[\\]^\\\\-]{0,8}",
            k in "[abc*]{0,8}",
        ) {
            proptest::prop_assert_eq!(
                glob_match(p.as_bytes(), k.as_bytes()),
                reference(p.as_bytes(), k.as_bytes())
            );
        }
    }
}
