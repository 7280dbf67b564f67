//! Whether the runs of two servers show a difference between them, or only
//! two medians: lab 14 of chapter 14, "Benchmarks".
//!
//! This file is the starting point of the lab, and not yet a module of the
//! driver: your solution writes [`compare`] and adds `mod verdict;` to
//! `main.rs` to use it in the summary (`report.rs`). The grader,
//! `tests/lab14_verdict.rs` at the repository's root, includes this file as
//! a module of its own, so keep it free of `crate::` imports:
//!
//! ```text
//! cargo test lab14 -- --ignored
//! ```

/// What the runs of a server `a` say against those of a server `b`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Verdict {
    /// Every run of `a` is better than every run of `b`: their ranges are
    /// apart. `ratio` is `a`'s median over `b`'s.
    Better { ratio: f64 },
    /// Every run of `a` is worse than every run of `b`.
    Worse { ratio: f64 },
    /// The ranges overlap, or touch: the runs do not show a difference,
    /// whatever the ratio of the medians says.
    Unclear { ratio: f64 },
}

/// Compares the runs of `a` with those of `b`; `higher_is_better` for a rate,
/// not for a latency or a cost. Values that are not finite are left out, as
/// `report::spread` leaves them out, and the median is `spread`'s (of an even
/// number of runs, the lower middle one). `None` when either side has no
/// value left, or `b`'s median is 0 (no ratio).
pub fn compare(a: &[f64], b: &[f64], higher_is_better: bool) -> Option<Verdict> {
    let _ = (a, b, higher_is_better);
    todo!("lab 14: compare, in bench/driver/src/verdict.rs: the ratio of the medians, and whether the two ranges are apart")
}
