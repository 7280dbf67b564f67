//! The grader of lab 14 (chapter 14, "Benchmarks"): `compare`, in
//! `bench/driver/src/verdict.rs`, which says whether the runs of two servers
//! show a difference or only two medians. This file includes the driver's
//! file as a module of its own, so the grader runs in the root package
//! without building the driver. `#[ignore]`d: it fails until you do the lab.
//! Grade it with `cargo test lab14 -- --ignored`.

#[path = "../bench/driver/src/verdict.rs"]
mod verdict;

use verdict::{compare, Verdict};

/// The ratio a verdict carries.
fn ratio(v: Verdict) -> f64 {
    match v {
        Verdict::Better { ratio } | Verdict::Worse { ratio } | Verdict::Unclear { ratio } => ratio,
    }
}

/// `compare(a, b, higher)` is `want`, with the ratio within 1e-9.
fn check(a: &[f64], b: &[f64], higher: bool, want: Verdict, why: &str) {
    let got = compare(a, b, higher);
    let same = |g: Verdict| {
        std::mem::discriminant(&g) == std::mem::discriminant(&want)
            && (ratio(g) - ratio(want)).abs() < 1e-9
    };
    assert!(
        got.is_some_and(same),
        "lab14: compare({a:?}, {b:?}, higher_is_better: {higher}) gave {got:?}, expected \
         Some({want:?}): {why}"
    );
}

#[test]
#[ignore = "lab 14: write compare in bench/driver/src/verdict.rs, then `cargo test lab14 -- --ignored`"]
fn lab14_verdict_ranges_apart_are_a_difference() {
    check(
        &[110.0, 120.0, 115.0],
        &[100.0, 105.0, 101.0],
        true,
        Verdict::Better {
            ratio: 115.0 / 101.0,
        },
        "every run of a is above every run of b, for a rate: better, by the medians' ratio",
    );
    check(
        &[100.0, 105.0, 101.0],
        &[110.0, 120.0, 115.0],
        true,
        Verdict::Worse {
            ratio: 101.0 / 115.0,
        },
        "every run of a is below every run of b, for a rate: worse",
    );
    check(
        &[2.0],
        &[1.0],
        true,
        Verdict::Better { ratio: 2.0 },
        "one run each: two points, apart",
    );
}

#[test]
#[ignore = "lab 14: write compare in bench/driver/src/verdict.rs, then `cargo test lab14 -- --ignored`"]
fn lab14_verdict_overlapping_or_touching_ranges_are_unclear() {
    check(
        &[100.0, 130.0, 115.0],
        &[110.0, 120.0, 112.0],
        true,
        Verdict::Unclear {
            ratio: 115.0 / 112.0,
        },
        "the ranges overlap: the medians differ, the runs do not show it",
    );
    check(
        &[105.0, 110.0, 107.0],
        &[100.0, 105.0, 103.0],
        true,
        Verdict::Unclear {
            ratio: 107.0 / 103.0,
        },
        "a's worst run equals b's best: touching ranges are not apart",
    );
    check(
        &[5.0, 5.0, 5.0],
        &[5.0, 5.0, 5.0],
        false,
        Verdict::Unclear { ratio: 1.0 },
        "the same runs",
    );
}

#[test]
#[ignore = "lab 14: write compare in bench/driver/src/verdict.rs, then `cargo test lab14 -- --ignored`"]
fn lab14_verdict_lower_is_better_for_a_cost() {
    check(
        &[10.0, 11.0, 12.0],
        &[20.0, 21.0, 22.0],
        false,
        Verdict::Better { ratio: 11.0 / 21.0 },
        "a latency or a cost per request: lower is better, and the ratio is still a over b",
    );
    check(
        &[20.0, 21.0, 22.0],
        &[10.0, 11.0, 12.0],
        false,
        Verdict::Worse { ratio: 21.0 / 11.0 },
        "a costs more in every run",
    );
}

#[test]
#[ignore = "lab 14: write compare in bench/driver/src/verdict.rs, then `cargo test lab14 -- --ignored`"]
fn lab14_verdict_medians_as_spread_takes_them() {
    check(
        &[4.0, 1.0, 3.0, 2.0],
        &[1.0],
        true,
        Verdict::Unclear { ratio: 2.0 },
        "of an even number of runs, the median is the lower middle one (a run that \
         happened, as report::spread takes it), and the runs come in any order",
    );
    check(
        &[f64::NAN, 30.0, f64::INFINITY, 10.0, 20.0],
        &[1.0, f64::NEG_INFINITY, 2.0, 3.0],
        true,
        Verdict::Better { ratio: 10.0 },
        "values that are not finite are left out, before the median and the ranges",
    );
}

#[test]
#[ignore = "lab 14: write compare in bench/driver/src/verdict.rs, then `cargo test lab14 -- --ignored`"]
fn lab14_verdict_no_runs_no_verdict() {
    let cases: [(&[f64], &[f64]); 4] = [
        (&[], &[1.0]),
        (&[1.0], &[]),
        (&[f64::NAN], &[1.0]),
        (&[1.0, 2.0, 3.0], &[0.0, 0.0, 1.0]),
    ];
    for (a, b) in cases {
        let got = compare(a, b, true);
        assert!(
            got.is_none(),
            "lab14: compare({a:?}, {b:?}, true) gave {got:?}, expected None: a side with no \
             finite run, or a median of 0 for b (no ratio), has no verdict"
        );
    }
}
