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

use std::alloc::{alloc_zeroed, dealloc, Layout};
use std::io;
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
    /// `COUNT` descriptors, page-aligned, shared with the kernel; the tail
    /// (how far we have provided) sits in the first one's reserved field.
    entries: *mut BufRingEntry,
    /// The buffers themselves, `SIZE` bytes each, buffer `i` at `i * SIZE`.
    memory: Box<[u8]>,
    tail: u16,
}

impl BufRing {
    fn layout() -> Layout {
        let size = COUNT as usize * std::mem::size_of::<BufRingEntry>();
        Layout::from_size_align(size, 4096).expect("a valid layout")
    }

    /// Registers a ring with `ring` and provides every buffer. Fails on a
    /// kernel before 5.19.
    pub(crate) fn new(ring: &IoUring) -> io::Result<BufRing> {
        // SAFETY: a non-zero size; zeroed memory is a valid descriptor array.
        let entries = unsafe { alloc_zeroed(Self::layout()) }.cast::<BufRingEntry>();
        if entries.is_null() {
            return Err(io::ErrorKind::OutOfMemory.into());
        }
        let mut ring_of = BufRing {
            entries,
            memory: vec![0; COUNT as usize * SIZE].into_boxed_slice(),
            tail: 0,
        };
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

    /// The bytes the kernel put in buffer `bid`.
    pub(crate) fn get(&self, bid: u16, len: usize) -> &[u8] {
        let start = bid as usize * SIZE;
        &self.memory[start..start + len.min(SIZE)]
    }

    /// Hands buffer `bid` back to the kernel: a descriptor at the tail, then
    /// the tail moved on, with release ordering so that the kernel sees the
    /// descriptor before the tail that covers it.
    pub(crate) fn give_back(&mut self, bid: u16) {
        let idx = (self.tail & (COUNT - 1)) as usize;
        let addr = self.memory[bid as usize * SIZE..].as_ptr() as u64;
        // SAFETY: `idx < COUNT`, inside the descriptors' allocation; the
        // kernel reads a descriptor only once the tail covers it.
        unsafe {
            let entry = &mut *self.entries.add(idx);
            entry.set_addr(addr);
            entry.set_len(SIZE as u32);
            entry.set_bid(bid);
        }
        self.tail = self.tail.wrapping_add(1);
        // SAFETY: the tail field is a u16 inside the first descriptor, which
        // the kernel reads concurrently: an atomic store.
        unsafe {
            let tail = BufRingEntry::tail(self.entries) as *const AtomicU16;
            (*tail).store(self.tail, Ordering::Release);
        }
    }
}
// ANCHOR_END: buf_ring

impl BufRing {
    /// Never frees the buffers: for a loop whose receives did not all come
    /// back, so the kernel may still write into them.
    pub(crate) fn leak(&mut self) {
        std::mem::forget(std::mem::take(&mut self.memory));
        self.entries = std::ptr::null_mut();
    }
}

impl Drop for BufRing {
    fn drop(&mut self) {
        if self.entries.is_null() {
            return; // leaked
        }
        // SAFETY: allocated in `new` with this layout; the ring that knew
        // it is gone (the loop drops its ring first).
        unsafe { dealloc(self.entries.cast(), Self::layout()) }
    }
}
