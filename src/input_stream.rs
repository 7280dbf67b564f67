//! [`InputStream`]: keeping the unfinished end of a message until the next read.
//!
//! Chapter 2, "The API", explains this file. It mirrors evio's `InputStream`
//! (`Begin`/`End` in `evio.go`): a read may end in the middle of a message, so
//! whatever the parser could not use is kept and put in front of the next
//! packet. Like evio's, it copies nothing while no partial message is pending:
//! `begin` hands back the packet itself.

// ANCHOR: input_stream
/// Joins the leftover of the previous packet with the next one.
///
/// ```
/// let mut stream = evio::InputStream::default();
/// let mut lines = Vec::new();
/// for packet in [&b"hel"[..], b"lo\nwor", b"ld\n"] {
///     let data = stream.begin(packet);
///     let mut used = 0;
///     while let Some(nl) = data[used..].iter().position(|&b| b == b'\n') {
///         lines.push(String::from_utf8_lossy(&data[used..used + nl]).into_owned());
///         used += nl + 1;
///     }
///     stream.end(packet, used);
/// }
/// assert_eq!(lines, ["hello", "world"]);
/// ```
#[derive(Debug, Default, Clone)]
pub struct InputStream {
    /// Bytes kept from earlier packets. Empty means "nothing pending", and
    /// then `begin` can return the packet without copying it.
    pending: Vec<u8>,
}

impl InputStream {
    /// Returns what was left over last time followed by `packet`.
    pub fn begin<'a>(&'a mut self, packet: &'a [u8]) -> &'a [u8] {
        if self.pending.is_empty() {
            packet
        } else {
            self.pending.extend_from_slice(packet);
            &self.pending
        }
    }

    /// Keeps everything after the first `consumed` bytes of what `begin`
    /// returned, for next time. Pass the same `packet` that went to `begin`.
    ///
    /// evio's `End` takes the rest as a slice; in Rust that slice would still
    /// borrow the stream we are about to change, so we take a count instead.
    pub fn end(&mut self, packet: &[u8], consumed: usize) {
        if self.pending.is_empty() {
            // `begin` returned `packet` itself: copy its tail, if any.
            self.pending.extend_from_slice(&packet[consumed..]);
        } else {
            // `begin` returned `pending`: drop what was used.
            self.pending.drain(..consumed);
        }
    }

    /// The number of bytes kept for the next packet.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }
}
// ANCHOR_END: input_stream

#[cfg(test)]
mod tests {
    use super::*;

    /// Splits input at newlines through an InputStream, the way a server would.
    fn lines_of(packets: &[&[u8]]) -> (Vec<Vec<u8>>, usize) {
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

    #[test]
    fn ch02_input_stream_joins_split_messages() {
        let (lines, left) = lines_of(&[b"a\nb", b"", b"c\n", b"d"]);
        assert_eq!(lines, vec![b"a".to_vec(), b"bc".to_vec()]);
        assert_eq!(left, 1);
    }

    #[test]
    fn ch02_input_stream_every_split_gives_the_same_lines() {
        let input: &[u8] = b"one\ntwo\n\nthree\nfour";
        let (whole, left) = lines_of(&[input]);
        for i in 0..=input.len() {
            for j in i..=input.len() {
                let got = lines_of(&[&input[..i], &input[i..j], &input[j..]]);
                assert_eq!(got, (whole.clone(), left), "split at {i} and {j}");
            }
        }
    }
}
