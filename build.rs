//! Names the kqueue systems once, and links libkqueue when the `libkqueue`
//! feature is on.
//!
//! Chapter 10, "kqueue", explains it. Two `cfg` names, set here for every
//! target of the package (the library, its tests, its examples) and used in
//! `src/poll/` and `tests/ch10_conformance.rs`, save repeating a list of six
//! systems: `kqueue_os`, a kernel with kqueue (macOS, iOS and the BSDs), and
//! `has_kqueue`, a build with the kqueue backend (a `kqueue_os`, or Linux with
//! the feature). Linux has no kqueue, but libkqueue
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
//! our own (`src/poll/kqueue/ffi.rs`), so no header and no bindgen are needed.

// ANCHOR: main
fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=LIBKQUEUE_LIB_DIR");
    println!("cargo:rustc-check-cfg=cfg(kqueue_os)");
    println!("cargo:rustc-check-cfg=cfg(has_kqueue)");
    // Cargo tells build scripts the target and the features through the
    // environment (a build script runs on the host, `cfg!` would name it).
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let kqueue_os = ["macos", "ios", "freebsd", "netbsd", "openbsd", "dragonfly"];
    let libkqueue = std::env::var_os("CARGO_FEATURE_LIBKQUEUE").is_some();
    if kqueue_os.contains(&os.as_str()) {
        println!("cargo:rustc-cfg=kqueue_os");
        println!("cargo:rustc-cfg=has_kqueue");
    } else if libkqueue {
        println!("cargo:rustc-cfg=has_kqueue");
        if let Some(dir) = std::env::var_os("LIBKQUEUE_LIB_DIR") {
            println!("cargo:rustc-link-search=native={}", dir.to_string_lossy());
        }
        println!("cargo:rustc-link-lib=kqueue");
    }
}
// ANCHOR_END: main
