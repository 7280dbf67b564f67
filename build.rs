//! Links libkqueue when the `libkqueue` feature is on; does nothing otherwise.
//!
//! Chapter 10, "kqueue", explains it. Linux has no kqueue, but libkqueue
//! (github.com/mheily/libkqueue) implements one in userspace over epoll, so
//! the kqueue backend can be built and tested on Linux:
//!
//! ```text
//! LIBKQUEUE_LIB_DIR=/path/to/libkqueue/build LD_LIBRARY_PATH=/path/to/libkqueue/build \
//!     cargo test --features libkqueue
//! ```
//!
//! `LIBKQUEUE_LIB_DIR` is the folder holding `libkqueue.so`; leave it unset
//! when libkqueue is installed where the linker looks (a distribution's
//! `libkqueue-dev` package). The declarations of `kqueue` and `kevent` are
//! our own (`src/poll/kqueue.rs`), so no header and no bindgen are needed.

// ANCHOR: main
fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=LIBKQUEUE_LIB_DIR");
    // Cargo tells build scripts which features are on through the environment.
    if std::env::var_os("CARGO_FEATURE_LIBKQUEUE").is_none() {
        return;
    }
    if let Some(dir) = std::env::var_os("LIBKQUEUE_LIB_DIR") {
        println!("cargo:rustc-link-search=native={}", dir.to_string_lossy());
    }
    println!("cargo:rustc-link-lib=kqueue");
}
// ANCHOR_END: main
