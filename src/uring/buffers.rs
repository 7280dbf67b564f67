//! A provided-buffer ring: receive buffers the kernel picks from only when
//! data arrives, instead of one per connection waiting in a receive.
//!
//! Chapter 16, "Completion instead of readiness", explains this file. evio
//! has nothing like it: its one 64 KiB read buffer per loop serves because a
//! readiness loop reads only sockets that have data. A receive submitted to
//! io_uring waits *with* its buffer, so one buffer per idle connection is
//! what the simple way costs. With a buffer ring (`IORING_REGISTER_PBUF_RING`,
//! Linux 5.19) each receive names a *group* instead of a buffer, the kernel
//! takes a buffer from the group when the bytes come, and the completion
//! says which (its buffer id). The loop gives the buffer back once `data`
//! has returned. Idle connections hold none.

use std::io;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU16, Ordering};

use io_uring::types::BufRingEntry;
use io_uring::IoUring;

/// The group id of the loop's one buffer group.
pub(crate) const GROUP: u16 = 0;

/// Buffers in the ring (a power of two, as the kernel requires) and the size
/// of each: 2 MiB per loop, whatever the number of connections. A loop
/// gives each buffer back before its next `io_uring_enter`, so all are free
/// at every submission; only more receives than this completing in one
/// batch run out (`ENOBUFS`, and the receive is armed again).
const COUNT: u16 = 128;
pub(crate) const SIZE: usize = 16 * 1024;

// ANCHOR: buf_ring
/// The ring of buffer descriptors the kernel reads, and the buffers.
pub(crate) struct BufRing {
    /// One mapping: `COUNT` descriptors on its first page (page-aligned, as
    /// the kernel wants them; the tail, how far we have provided, sits in
    /// the first one's reserved field), then the buffers, `SIZE` bytes
    /// each, buffer `i` at `BUFFERS + i * SIZE`.
    pages: Pages,
    tail: u16,
}

/// Where the buffers start: after the descriptors' page.
const BUFFERS: usize = 4096;
const _: () = assert!(COUNT as usize * std::mem::size_of::<BufRingEntry>() <= BUFFERS);

impl BufRing {
    /// Registers a ring with `ring` and provides every buffer. Fails on a
    /// kernel before 5.19.
    pub(crate) fn new(ring: &IoUring) -> io::Result<BufRing> {
        let mut ring_of = BufRing {
            pages: Pages::new(BUFFERS + COUNT as usize * SIZE)?,
            tail: 0,
        };
        let entries = ring_of.entries();
        // SAFETY: the descriptors live until `drop`, which runs after the
        // loop has unregistered them or dropped the ring (field order).
        unsafe {
            ring.submitter()
                .register_buf_ring_with_flags(entries as u64, COUNT, GROUP, 0)
        }
        .map_err(|e| {
            io::Error::new(
                e.kind(),
                format!(
                    "backend IoUring: this kernel has no provided-buffer rings \
                         (IORING_REGISTER_PBUF_RING, Linux 5.19): {e}"
                ),
            )
        })?;
        (0..COUNT).for_each(|bid| ring_of.give_back(bid));
        Ok(ring_of)
    }

    fn entries(&self) -> *mut BufRingEntry {
        self.pages.ptr.as_ptr().cast()
    }

    fn buffer(&self, bid: u16) -> *mut u8 {
        // SAFETY: `bid < COUNT`: inside the mapping.
        unsafe { (self.pages.ptr.as_ptr()).add(BUFFERS + bid as usize * SIZE) }
    }

    /// The bytes the kernel put in buffer `bid`.
    pub(crate) fn get(&self, bid: u16, len: usize) -> &[u8] {
        // SAFETY: the kernel wrote the bytes and gave the buffer to us; it
        // writes into it again only once `give_back` has returned it.
        unsafe { std::slice::from_raw_parts(self.buffer(bid), len.min(SIZE)) }
    }

    /// Hands buffer `bid` back to the kernel: a descriptor at the tail, then
    /// the tail moved on, with release ordering so that the kernel sees the
    /// descriptor before the tail that covers it.
    pub(crate) fn give_back(&mut self, bid: u16) {
        let idx = (self.tail & (COUNT - 1)) as usize;
        let addr = self.buffer(bid) as u64;
        // SAFETY: `idx < COUNT`, inside the descriptors' allocation; the
        // kernel reads a descriptor only once the tail covers it.
        unsafe {
            let entry = &mut *self.entries().add(idx);
            entry.set_addr(addr);
            entry.set_len(SIZE as u32);
            entry.set_bid(bid);
        }
        self.tail = self.tail.wrapping_add(1);
        // SAFETY: the tail field is a u16 inside the first descriptor, which
        // the kernel reads concurrently: an atomic store.
        unsafe {
            let tail = BufRingEntry::tail(self.entries()) as *const AtomicU16;
            (*tail).store(self.tail, Ordering::Release);
        }
    }
}
// ANCHOR_END: buf_ring

impl BufRing {
    /// Never frees the buffers: for a loop whose receives did not all come
    /// back, so the kernel may still write into them.
    pub(crate) fn leak(&mut self) {
        self.pages.len = 0;
    }
}

// ANCHOR: pages
/// Anonymous memory mapped straight from the kernel, not from `malloc`,
/// for three reasons. It is page-aligned, as the descriptors must be. It
/// is zero without being touched, so a buffer costs memory only once the
/// kernel has written into it. And freeing it leaves `malloc` as it was:
/// glibc raises its threshold for serving big blocks from `mmap` to the size
/// of any such block freed, so freeing 2 MiB of buffers (the probe's, in
/// `super::probe`) made every later table of connections up to 2 MiB grow
/// inside the heap, where each outgrown copy stayed resident: 210 bytes per
/// idle connection more than the reactor, in chapter 15's measurement.
struct Pages {
    ptr: NonNull<u8>,
    /// 0 once leaked: never unmapped.
    len: usize,
}

impl Pages {
    fn new(len: usize) -> io::Result<Pages> {
        let (prot, flags) = (
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
        );
        // SAFETY: a new private mapping at an address the kernel picks.
        let ptr = unsafe { libc::mmap(std::ptr::null_mut(), len, prot, flags, -1, 0) };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let ptr = NonNull::new(ptr.cast()).expect("mmap never maps page 0");
        Ok(Pages { ptr, len })
    }
}

impl Drop for Pages {
    fn drop(&mut self) {
        if self.len > 0 {
            // SAFETY: mapped in `new` with this length; the ring that knew
            // it is gone (the loop drops its ring first).
            unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
        }
    }
}
// ANCHOR_END: pages
