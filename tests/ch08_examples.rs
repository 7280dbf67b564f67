//! The `ticker` example of chapter 8, run as a reader runs it: as a child
//! process that prints one ready line with the real port, then a line per
//! tick, and exits by itself after `--ticks` ticks.

mod common;

use std::io::Read;

use common::{parse_ready, read_stdout_line, spawn, within};

#[test]
fn ch08_ticker_example_stops_after_its_ticks() {
    within(60, || {
        let (mut child, mut stdout) = spawn(
            "ticker",
            &["--port", "0", "--interval-ms", "50", "--ticks", "3"],
        );
        let (port, loops) = parse_ready("ticker", &read_stdout_line(&mut stdout));
        assert_ne!(port, 0);
        assert_eq!(loops, 1);
        // The rest of the output arrives when the ticker exits by itself
        // (the watchdog fails the test if it does not).
        let mut rest = String::new();
        stdout.read_to_string(&mut rest).unwrap();
        let status = child.0.wait().unwrap();
        assert!(status.success(), "{status}");
        let ticks = rest.lines().filter(|l| l.starts_with("tick: ")).count();
        assert_eq!(ticks, 3, "{rest}");
        assert!(rest.trim_end().ends_with("ticker: done"), "{rest}");
    });
}
