//! The epoll backend, woken through an eventfd.
//!
//! Chapter 3, "The poller", explains this file. It mirrors evio's
//! `internal/internal_linux.go`: `OpenPoll` makes an epoll instance and an
//! eventfd registered for reading; `Trigger` writes the eventfd; `Wait` calls
//! `epoll_wait` and reads the eventfd when it is reported. Differences: the
//! wait has no fixed 100 ms timeout (the loop passes the time to its next
//! tick, or none), and an `epoll_ctl` error is returned, not a panic.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::time::Duration;

use super::interface::{Event, Interest, Poll, Signal};
use super::sys::cvt;

/// How many ready descriptors one `epoll_wait` can report: evio's 64. More
/// ready descriptors are not lost; the next wait reports them.
const MAX_EVENTS: usize = 64;

// ANCHOR: epoll
/// An epoll instance plus the eventfd that wakes it.
pub struct Epoll {
    epfd: OwnedFd,
    /// Shared with every [`EventFd`] signal handed out, so a late wake-up
    /// from another thread writes to a still-open fd even after the poller
    /// is gone. A `File`, because an eventfd is read and written like one
    /// (8 bytes, a counter), and `File` does that without `unsafe`.
    wake: Arc<File>,
    buf: Vec<libc::epoll_event>,
}

/// The wake-up half: writing 1 to the eventfd makes it readable, which makes
/// `epoll_wait` return.
pub struct EventFd(Arc<File>);

impl Signal for EventFd {
    fn signal(&self) -> io::Result<()> {
        // `&File` is `Write`: no `&mut` needed, so any thread can signal.
        match (&*self.0).write(&1u64.to_ne_bytes()) {
            Ok(_) => Ok(()),
            // EAGAIN: the counter is at its maximum, so the fd is readable
            // anyway and the loop will wake. Nothing is lost.
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
            Err(e) => Err(e),
        }
    }
}
// ANCHOR_END: epoll

// ANCHOR: mask
/// The epoll event mask for an interest. Level-triggered (no `EPOLLET`), as
/// evio: a socket that still has unread input is reported again and again.
fn mask(interest: Interest) -> u32 {
    let mut m = 0;
    if interest.read {
        // EPOLLRDHUP: also report a peer that shut down its write side.
        m |= libc::EPOLLIN | libc::EPOLLRDHUP;
    }
    if interest.write {
        m |= libc::EPOLLOUT;
    }
    m as u32
}
// ANCHOR_END: mask

// ANCHOR: new
impl Epoll {
    fn ctl(&self, op: libc::c_int, fd: RawFd, interest: Interest) -> io::Result<()> {
        self.ctl_with(op, fd, mask(interest))
    }

    fn ctl_with(&self, op: libc::c_int, fd: RawFd, events: u32) -> io::Result<()> {
        let mut ev = libc::epoll_event {
            events,
            u64: fd as u64,
        };
        // SAFETY: a valid epoll fd and a pointer to a live epoll_event.
        cvt(unsafe { libc::epoll_ctl(self.epfd.as_raw_fd(), op, fd, &mut ev) })?;
        Ok(())
    }
}

impl Poll for Epoll {
    type Signal = EventFd;

    fn new() -> io::Result<Self> {
        // SAFETY: plain syscalls; the returned fds are owned at once.
        let epfd = unsafe { OwnedFd::from_raw_fd(cvt(libc::epoll_create1(libc::EPOLL_CLOEXEC))?) };
        let wake = unsafe {
            OwnedFd::from_raw_fd(cvt(libc::eventfd(
                0,
                libc::EFD_NONBLOCK | libc::EFD_CLOEXEC,
            ))?)
        };
        let poll = Epoll {
            epfd,
            wake: Arc::new(File::from(wake)),
            buf: Vec::with_capacity(MAX_EVENTS),
        };
        poll.ctl(libc::EPOLL_CTL_ADD, poll.wake.as_raw_fd(), Interest::READ)?;
        Ok(poll)
    }
    // ANCHOR_END: new

    fn signal(&self) -> EventFd {
        EventFd(self.wake.clone())
    }

    fn add(&mut self, fd: RawFd, interest: Interest) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_ADD, fd, interest)
    }

    /// `EPOLLEXCLUSIVE`: when the listener becomes readable, the kernel
    /// wakes one of the epoll instances waiting on it (or a few), not every
    /// one. epoll_ctl(2) allows it only with `EPOLL_CTL_ADD` (a later `MOD`
    /// fails) and only beside `EPOLLIN`, `EPOLLOUT`, `EPOLLWAKEUP` and
    /// `EPOLLET`: not `EPOLLRDHUP`, which `mask` adds for read interest and
    /// which a listener does not need.
    fn add_exclusive(&mut self, fd: RawFd, interest: Interest) -> io::Result<()> {
        let mut events = libc::EPOLLEXCLUSIVE;
        if interest.read {
            events |= libc::EPOLLIN;
        }
        if interest.write {
            events |= libc::EPOLLOUT;
        }
        self.ctl_with(libc::EPOLL_CTL_ADD, fd, events as u32)
    }

    fn modify(&mut self, fd: RawFd, interest: Interest) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_MOD, fd, interest)
    }

    fn delete(&mut self, fd: RawFd) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_DEL, fd, Interest::READ)
    }

    // ANCHOR: wait
    fn wait(&mut self, events: &mut Vec<Event>, timeout: Option<Duration>) -> io::Result<()> {
        events.clear();
        // Round up, so a 0.5 ms timeout does not become a busy 0 ms poll.
        let ms = timeout.map_or(-1, |t| {
            t.as_nanos().div_ceil(1_000_000).min(i32::MAX as u128) as i32
        });
        // SAFETY: the buffer has room for MAX_EVENTS entries; the kernel
        // fills the first n and we set the length to n.
        let n = match cvt(unsafe {
            libc::epoll_wait(
                self.epfd.as_raw_fd(),
                self.buf.as_mut_ptr(),
                MAX_EVENTS as i32,
                ms,
            )
        }) {
            Ok(n) => n as usize,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(()),
            Err(e) => return Err(e),
        };
        unsafe { self.buf.set_len(n) };
        let wake_fd = self.wake.as_raw_fd();
        for ev in &self.buf {
            let fd = ev.u64 as RawFd;
            if fd == wake_fd {
                // Reset the eventfd counter so the next wait blocks again.
                // EAGAIN (already reset) is harmless, so the result is not
                // looked at.
                let _ = (&*self.wake).read(&mut [0u8; 8]);
                continue;
            }
            let bits = ev.events as libc::c_int;
            let error = bits & (libc::EPOLLERR | libc::EPOLLHUP) != 0;
            events.push(Event {
                fd,
                readable: error || bits & (libc::EPOLLIN | libc::EPOLLRDHUP) != 0,
                writable: error || bits & libc::EPOLLOUT != 0,
            });
        }
        Ok(())
    }
    // ANCHOR_END: wait
}
