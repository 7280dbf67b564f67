//! The epoll backend, woken through an eventfd.
//!
//! Chapter 3, "The poller", explains this file. It mirrors evio's
//! `internal/internal_linux.go`: `OpenPoll` makes an epoll instance and an
//! eventfd registered for reading; `Trigger` writes the eventfd; `Wait` calls
//! `epoll_wait` and reads the eventfd when it is reported. Differences: the
//! wait has no fixed 100 ms timeout (the loop passes the time to its next
//! tick, or none), and an `epoll_ctl` error is returned, not a panic.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::time::Duration;

use super::Signal;
use super::{Event, Interest, Poll};

/// How many ready descriptors one `epoll_wait` can report: evio's 64. More
/// ready descriptors are not lost; the next wait reports them.
const MAX_EVENTS: usize = 64;

/// Turns a libc return value into an `io::Result`, reading `errno` on -1.
fn cvt(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

// ANCHOR: epoll
/// An epoll instance plus the eventfd that wakes it.
pub struct Epoll {
    epfd: OwnedFd,
    /// Shared with every [`EventFd`] signal handed out, so a late wake-up
    /// from another thread writes to a still-open fd even after the poller
    /// is gone.
    wake: Arc<OwnedFd>,
    buf: Vec<libc::epoll_event>,
}

/// The wake-up half: writing 1 to the eventfd makes it readable, which makes
/// `epoll_wait` return.
pub struct EventFd(Arc<OwnedFd>);

impl Signal for EventFd {
    fn signal(&self) -> io::Result<()> {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a live u64 to an fd we own.
        let n = unsafe { libc::write(self.0.as_raw_fd(), (&one as *const u64).cast(), 8) };
        if n == 8 {
            return Ok(());
        }
        let err = io::Error::last_os_error();
        // EAGAIN: the counter is at its maximum, so the fd is readable anyway
        // and the loop will wake. Nothing is lost.
        if err.kind() == io::ErrorKind::WouldBlock {
            return Ok(());
        }
        Err(err)
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
        let mut ev = libc::epoll_event {
            events: mask(interest),
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
            wake: Arc::new(wake),
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
        let n = unsafe {
            libc::epoll_wait(
                self.epfd.as_raw_fd(),
                self.buf.as_mut_ptr(),
                MAX_EVENTS as i32,
                ms,
            )
        };
        if n == -1 {
            let err = io::Error::last_os_error();
            return if err.kind() == io::ErrorKind::Interrupted {
                Ok(())
            } else {
                Err(err)
            };
        }
        unsafe { self.buf.set_len(n as usize) };
        let wake_fd = self.wake.as_raw_fd();
        for ev in &self.buf {
            let fd = ev.u64 as RawFd;
            if fd == wake_fd {
                // Reset the eventfd counter so the next wait blocks again.
                let mut value: u64 = 0;
                // SAFETY: reads 8 bytes into a live u64. EAGAIN (already
                // reset) is harmless.
                unsafe { libc::read(fd, (&mut value as *mut u64).cast(), 8) };
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
