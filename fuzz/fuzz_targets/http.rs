//! The `http` fuzz target: libFuzzer's inputs into [`fuzz_checks::http`],
//! which panics on a defect. Chapter 15, "What a server owes its clients",
//! explains how to run it.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_checks::http(data));
