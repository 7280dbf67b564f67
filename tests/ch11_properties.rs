//! Property tests (chapter 11, "Testing what is hard to test") for the three
//! pure pieces of the library: the balancing rules (`src/reactor/balance.rs`,
//! the top of evio's `loopAccept`), address parsing (`src/addr.rs`, evio's
//! `parseAddr`) and `InputStream` (`src/input_stream.rs`, evio's
//! `InputStream.Begin`/`End`). Each property is checked on a few hundred
//! generated cases; a failure is shrunk to a small one and its seed saved
//! under `proptest-regressions/`.

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;

use evio::internals::{ListenAddr, Network, Target};
use evio::InputStream;

/// Failing cases go to `proptest-regressions/ch11_properties.txt`, next to
/// the crate's other regressions (proptest's default puts an integration
/// test's next to its source file instead).
fn config() -> ProptestConfig {
    let file = "proptest-regressions/ch11_properties.txt";
    ProptestConfig {
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(file))),
        ..ProptestConfig::default()
    }
}

// ANCHOR: balance
#[cfg(unix)]
mod balance {
    use super::*;
    use evio::internals::may_accept;
    use evio::LoadBalance;

    proptest! {
        #![proptest_config(config())]

        /// RoundRobin: for every new connection exactly one loop may accept
        /// (the one whose turn it is), so after `n` connections each loop
        /// holds `n / loops`, the first `n % loops` one more.
        #[test]
        fn ch11_round_robin_spreads_exactly_evenly(loops in 1usize..9, n in 0usize..300) {
            let mut counts = vec![0usize; loops];
            for turn in 0..n {
                let takers: Vec<usize> = (0..loops)
                    .filter(|&me| may_accept(LoadBalance::RoundRobin, me, loops, turn, |i| counts[i]))
                    .collect();
                prop_assert_eq!(takers.len(), 1, "turn {}: {:?}", turn, takers);
                counts[takers[0]] += 1;
            }
            for (i, &c) in counts.iter().enumerate() {
                prop_assert_eq!(c, n / loops + usize::from(i < n % loops), "{:?}", counts);
            }
        }

        /// LeastConnections: a loop may accept exactly when it holds the
        /// fewest connections, so one always may, and none above the minimum.
        #[test]
        fn ch11_least_connections_only_to_a_loop_at_the_minimum(
            counts in vec(0usize..20, 2..9),
        ) {
            let min = *counts.iter().min().unwrap();
            let loops = counts.len();
            for me in 0..loops {
                let may = may_accept(LoadBalance::LeastConnections, me, loops, 0, |i| counts[i]);
                prop_assert_eq!(may, counts[me] == min, "loop {} of {:?}", me, counts);
            }
        }

        /// LeastConnections as the loops run it: connections arrive and
        /// close; each arrival goes to whichever allowed loop wins the race.
        /// The loop that takes it never holds more than the minimum.
        #[test]
        fn ch11_least_connections_under_arrivals_and_closes(
            loops in 2usize..6,
            events in vec((any::<bool>(), any::<prop::sample::Index>()), 0..200),
        ) {
            let mut counts = vec![0usize; loops];
            for (arrives, pick) in events {
                if arrives {
                    let takers: Vec<usize> = (0..loops)
                        .filter(|&me| {
                            may_accept(LoadBalance::LeastConnections, me, loops, 0, |i| counts[i])
                        })
                        .collect();
                    prop_assert!(!takers.is_empty());
                    let winner = takers[pick.index(takers.len())];
                    prop_assert_eq!(counts[winner], *counts.iter().min().unwrap());
                    counts[winner] += 1;
                } else {
                    let open: Vec<usize> = (0..loops).filter(|&i| counts[i] > 0).collect();
                    if !open.is_empty() {
                        counts[open[pick.index(open.len())]] -= 1;
                    }
                }
            }
        }

        /// Random never refuses: every woken loop races for the connection.
        #[test]
        fn ch11_random_never_refuses(loops in 1usize..9, turn: usize, counts in vec(0usize..20, 8)) {
            for me in 0..loops {
                prop_assert!(may_accept(LoadBalance::Random, me, loops, turn, |i| counts[i]));
            }
        }
    }
}
// ANCHOR_END: balance

// ANCHOR: addr
/// The schemes, as written and as parsed.
const SCHEMES: [(&str, Network); 7] = [
    ("tcp", Network::Tcp),
    ("tcp4", Network::Tcp4),
    ("tcp6", Network::Tcp6),
    ("udp", Network::Udp),
    ("udp4", Network::Udp4),
    ("udp6", Network::Udp6),
    ("unix", Network::Unix),
];

/// A valid address, written out, with what parsing it must give.
fn valid_address() -> impl Strategy<Value = (String, ListenAddr)> {
    let host = prop_oneof![
        Just(String::new()),
        Just("localhost".to_string()),
        "[a-z][a-z0-9-]{0,10}(\\.[a-z][a-z0-9-]{0,10}){0,2}",
        any::<std::net::Ipv4Addr>().prop_map(|ip| ip.to_string()),
        any::<std::net::Ipv6Addr>().prop_map(|ip| ip.to_string()),
    ];
    let scheme = (0..=SCHEMES.len(), any::<bool>()); // SCHEMES.len(): no scheme
    let inet = (host, prop::option::of(any::<u16>()));
    let path = "/[a-zA-Z0-9_./-]{1,30}";
    // `reuseport=value`, `reuseport` alone, or an empty `&&` segment.
    let value = prop_oneof![
        "[1-9tTyY][a-zA-Z0-9]{0,4}",  // true
        "[0nNfFa-z][a-zA-Z0-9]{0,4}", // false
        Just(String::new()),
    ];
    let option = prop::option::of(value);
    let options = prop::option::of(vec((option, any::<bool>()), 0..4));
    (scheme, inet, path, options).prop_map(|((s, net), (host, port), path, options)| {
        let (network, mut text) = match SCHEMES.get(s) {
            Some((name, network)) => {
                let suffix = if net { "-net" } else { "" };
                (*network, format!("{name}{suffix}://"))
            }
            None => (Network::Tcp, String::new()),
        };
        let target = if network == Network::Unix {
            text += &path;
            Target::Unix(path.into())
        } else {
            let port_text = port.map(|p| p.to_string()).unwrap_or_default();
            match (host.contains(':'), host.is_empty() && port.is_none()) {
                (true, _) => text += &format!("[{host}]:{port_text}"),
                (false, true) => {} // the empty address: any host, any port
                (false, false) => text += &format!("{host}:{port_text}"),
            }
            Target::Inet {
                host,
                port: port.unwrap_or(0),
            }
        };
        let mut reuse_port = false;
        if let Some(options) = options {
            let segments: Vec<String> = options
                .iter()
                .map(|(value, bare)| match value {
                    Some(v) if *bare && v.is_empty() => "reuseport".to_string(),
                    Some(v) => format!("reuseport={v}"),
                    None => String::new(),
                })
                .collect();
            // The last `reuseport` wins; its value is true when it starts
            // with 1-9, t, T, y or Y (evio's rule).
            if let Some(v) = options.iter().rev().find_map(|(v, _)| v.as_ref()) {
                reuse_port = v.starts_with(|c: char| "123456789tTyY".contains(c));
            }
            text += &format!("?{}", segments.join("&"));
        }
        let stdlib = net && s < SCHEMES.len();
        (
            text,
            ListenAddr {
                network,
                target,
                reuse_port,
                mode: None,
                stdlib,
            },
        )
    })
}

proptest! {
    #![proptest_config(config())]

    /// Every valid combination of scheme, `-net`, host, port, path and
    /// options parses back into the parts it was written from.
    #[test]
    fn ch11_addr_valid_addresses_round_trip((text, want) in valid_address()) {
        prop_assert_eq!(ListenAddr::parse(&text).unwrap(), want, "{}", text);
    }

    /// Any string: parsing never panics, and a refusal is `InvalidInput`
    /// with a message that quotes the address.
    #[test]
    fn ch11_addr_random_strings_never_panic(
        text in prop_oneof![any::<String>(), "[a-z0-9:/?&=\\[\\].-]{0,30}"],
    ) {
        if let Err(e) = ListenAddr::parse(&text) {
            prop_assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
            prop_assert!(e.to_string().contains(&format!("{text:?}")), "{}", e);
        }
    }
}
// ANCHOR_END: addr

// ANCHOR: input_stream
/// Splits `packets` into lines through an [`InputStream`], as a server's
/// `data` would: the lines, and how many bytes are left waiting.
fn lines_through_stream(packets: &[&[u8]]) -> (Vec<Vec<u8>>, usize) {
    let mut stream = InputStream::default();
    let mut lines = Vec::new();
    for packet in packets {
        let data = stream.begin(packet);
        let mut used = 0;
        while let Some(nl) = data[used..].iter().position(|&b| b == b'\n') {
            lines.push(data[used..used + nl].to_vec());
            used += nl + 1;
        }
        stream.end(packet, used);
    }
    (lines, stream.pending())
}

proptest! {
    #![proptest_config(config())]

    /// However the input is cut into packets, the lines and the leftover
    /// are those of the whole input split at its newlines.
    #[test]
    fn ch11_input_stream_any_split_gives_the_same_lines(
        input in vec(prop_oneof![Just(b'\n'), Just(b'a'), Just(b'b')], 0..64),
        cuts in vec(any::<prop::sample::Index>(), 0..8),
    ) {
        let mut cuts: Vec<usize> = cuts.iter().map(|c| c.index(input.len() + 1)).collect();
        cuts.sort();
        let bounds: Vec<usize> = [0].into_iter().chain(cuts).chain([input.len()]).collect();
        let packets: Vec<&[u8]> = bounds.windows(2).map(|w| &input[w[0]..w[1]]).collect();

        let mut want: Vec<Vec<u8>> = input.split(|&b| b == b'\n').map(<[u8]>::to_vec).collect();
        let left = want.pop().unwrap().len(); // the part after the last newline
        let text: Vec<_> = packets.iter().map(|p| String::from_utf8_lossy(p)).collect();
        prop_assert_eq!(lines_through_stream(&packets), (want, left), "packets {:?}", text);
    }
}
// ANCHOR_END: input_stream
