//! The epoll backend, woken through an eventfd.
//!
//! Chapter 3, "The poller", explains this file. It mirrors evio's
//! `internal/internal_linux.go`: `OpenPoll` makes an epoll instance and an
//! eventfd registered for reading; `Trigger` writes the eventfd; `Wait` calls
//! `epoll_wait` and reads the eventfd when it is reported. Differences: the
//! wait has no fixed 100 ms timeout (the loop passes the time to its next
//! tick, or none), and an `epoll_ctl` error is returned, not a panic.
//! And a wait with a timeout is kept by a `timerfd` instead of the timeout
//! of `epoll_wait` itself (see `wait`).

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

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
    /// The timer that ends a timed wait, registered for reading like the
    /// eventfd, and when it is set to fire, if it is (see `wait`).
    timer: File,
    armed: Option<Instant>,
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
        let timer = unsafe {
            OwnedFd::from_raw_fd(cvt(libc::timerfd_create(
                libc::CLOCK_MONOTONIC,
                libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
            ))?)
        };
        let poll = Epoll {
            epfd,
            wake: Arc::new(File::from(wake)),
            timer: File::from(timer),
            armed: None,
            buf: Vec::with_capacity(MAX_EVENTS),
        };
        poll.ctl(libc::EPOLL_CTL_ADD, poll.wake.as_raw_fd(), Interest::READ)?;
        poll.ctl(libc::EPOLL_CTL_ADD, poll.timer.as_raw_fd(), Interest::READ)?;
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

    // ANCHOR: edge
    const EDGE_TRIGGERED: bool = true;

    /// `EPOLLET`: the kernel queues the fd when a wake-up comes (input
    /// arrived, room freed up) and, once a wait has reported it, does not
    /// queue it again by itself, so the next wait does not poll the socket
    /// again to find it quiet (what level-triggering costs: chapter 14).
    fn add_edge(&mut self, fd: RawFd, interest: Interest) -> io::Result<()> {
        self.ctl_with(
            libc::EPOLL_CTL_ADD,
            fd,
            mask(interest) | libc::EPOLLET as u32,
        )
    }

    /// `EPOLL_CTL_MOD` polls the socket for the new mask, and queues it if
    /// it is ready: a direction turned on is reported though its edge came
    /// before, as `Poll::add_edge` promises.
    fn modify_edge(&mut self, fd: RawFd, interest: Interest) -> io::Result<()> {
        self.ctl_with(
            libc::EPOLL_CTL_MOD,
            fd,
            mask(interest) | libc::EPOLLET as u32,
        )
    }
    // ANCHOR_END: edge

    fn delete(&mut self, fd: RawFd) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_DEL, fd, Interest::READ)
    }

    // ANCHOR: wait
    /// A timed `epoll_wait` costs the kernel a clock read and a timer's
    /// slack on every call, events ready or not; and the loop nearly always
    /// has a deadline (chapter 15's idle timeout). So the timeout is kept by
    /// the timer instead, set only when the wait must end sooner than it is
    /// set to fire, and every `epoll_wait` is untimed (chapter 14 measured
    /// the difference: "What is left on HTTP"). A timer set to fire sooner
    /// than this wait's end fires, and the wait goes on to its own end.
    fn wait(&mut self, events: &mut Vec<Event>, timeout: Option<Duration>) -> io::Result<()> {
        events.clear();
        let end = match timeout {
            Some(t) if t.is_zero() => return self.epoll_wait(events, 0).map(drop),
            Some(t) => Some(Instant::now() + t),
            None => None,
        };
        loop {
            if let Some(end) = end.filter(|&e| self.armed.map_or(true, |a| e < a)) {
                self.set_timer(end)?;
            }
            let woken = self.epoll_wait(events, -1)?;
            // Back with nothing: woken, interrupted, or the timer fired; a
            // timer set for a sooner end than this wait's does not end it.
            if !events.is_empty() || woken || end.map_or(true, |e| Instant::now() >= e) {
                return Ok(());
            }
        }
    }
    // ANCHOR_END: wait
}

// ANCHOR: epoll_wait
impl Epoll {
    /// One `epoll_wait` (`ms`: -1 none, 0 none to wait), its events turned
    /// into `Event`s. The eventfd is reset and the timer read when they are
    /// reported. Whether the wait was woken: by the eventfd, or interrupted.
    fn epoll_wait(&mut self, events: &mut Vec<Event>, ms: i32) -> io::Result<bool> {
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
            // As a wake-up: the loop looks again.
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(true),
            Err(e) => return Err(e),
        };
        unsafe { self.buf.set_len(n) };
        let (wake_fd, timer_fd) = (self.wake.as_raw_fd(), self.timer.as_raw_fd());
        let mut woken = false;
        for ev in &self.buf {
            let fd = ev.u64 as RawFd;
            if fd == wake_fd {
                // Reset the eventfd counter so the next wait blocks again.
                // EAGAIN (already reset) is harmless, so the result is not
                // looked at.
                let _ = (&*self.wake).read(&mut [0u8; 8]);
                woken = true;
                continue;
            }
            if fd == timer_fd {
                // Fired: read its count, so that it is not reported again.
                let _ = (&self.timer).read(&mut [0u8; 8]);
                self.armed = None;
                continue;
            }
            let bits = ev.events as libc::c_int;
            let error = bits & (libc::EPOLLERR | libc::EPOLLHUP) != 0;
            events.push(Event {
                fd,
                readable: error || bits & (libc::EPOLLIN | libc::EPOLLRDHUP) != 0,
                writable: error || bits & libc::EPOLLOUT != 0,
                closed: error || bits & libc::EPOLLRDHUP != 0,
            });
        }
        Ok(woken)
    }

    /// Sets the timer to fire at `end` (relative to now: `Instant` has no
    /// clock value to give the kernel), rounded up to a microsecond.
    fn set_timer(&mut self, end: Instant) -> io::Result<()> {
        let left = end
            .saturating_duration_since(Instant::now())
            .max(Duration::from_micros(1));
        let spec = libc::itimerspec {
            it_interval: libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value: libc::timespec {
                tv_sec: left.as_secs() as libc::time_t,
                tv_nsec: left.subsec_nanos() as libc::c_long,
            },
        };
        // SAFETY: a timerfd we own, and a pointer to a live itimerspec.
        cvt(unsafe {
            libc::timerfd_settime(self.timer.as_raw_fd(), 0, &spec, std::ptr::null_mut())
        })?;
        self.armed = Some(end);
        Ok(())
    }
}
// ANCHOR_END: epoll_wait
