//! A unix socket's file, for every engine: a path is taken only from nobody,
//! its permissions are set before anyone can connect, and a server removes
//! only the file it made.
//!
//! Chapter 15, "What a server owes its clients", explains this file, in its
//! section "Unix socket paths and signals". It replaces what evio's `Serve`
//! (`evio.go`) does with the path: `os.RemoveAll` before binding, whoever
//! answers on it, and again when the listener closes, whoever made the file
//! by then. So a second evio server on the path of a running one takes it
//! over silently (the first keeps running, unreachable), and the first to
//! stop deletes the second's file. Here [`bind`] asks first whether a server
//! answers (one `connect`), and [`SocketFile`] remembers which file it made
//! (device and inode) and removes only that one.

use std::fs::{self, Permissions};
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};

use socket2::{Domain, SockAddr, Socket, Type};

/// The socket file a listener made; dropping it removes the file, if it is
/// still that file.
#[derive(Debug)]
pub(crate) struct SocketFile {
    path: PathBuf,
    /// Device and inode of the file `bind` made.
    made: Option<(u64, u64)>,
}

/// Device and inode of whatever is at `path` now, without following a link.
fn identity(path: &Path) -> Option<(u64, u64)> {
    fs::symlink_metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

impl SocketFile {
    /// The path the listener was bound to.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the file at the path is still the one this listener made:
    /// not removed, nor replaced by another server's.
    pub(crate) fn is_ours(&self) -> bool {
        self.made.is_some() && identity(&self.path) == self.made
    }
}

// ANCHOR: drop
impl Drop for SocketFile {
    /// Removes the file if it is still ours. Between the check and the
    /// `unlink` another server could replace it: a window of one system
    /// call, where evio's has no bounds at all.
    fn drop(&mut self) {
        if self.is_ours() {
            let _ = fs::remove_file(&self.path);
        }
    }
}
// ANCHOR_END: drop

fn error(kind: io::ErrorKind, path: &Path, what: impl std::fmt::Display) -> io::Error {
    io::Error::new(kind, format!("{}: {what}", path.display()))
}

// ANCHOR: bind
/// Binds a unix stream socket at `path`, with the file's permissions set to
/// `mode` (`unix://PATH?mode=0660`) before it listens, so that no client
/// connects in between through the umask's permissions.
pub(crate) fn bind(
    path: &Path,
    mode: Option<u32>,
    backlog: i32,
) -> io::Result<(UnixListener, SocketFile)> {
    clear_stale(path)?;
    let context = |e: io::Error| error(e.kind(), path, e);
    let socket = Socket::new(Domain::UNIX, Type::STREAM, None)?;
    socket.bind(&SockAddr::unix(path)?).map_err(context)?;
    // From here on, an error drops `file`, which removes what bind made.
    let file = SocketFile {
        path: path.to_path_buf(),
        made: identity(path),
    };
    if let Some(mode) = mode {
        fs::set_permissions(path, Permissions::from_mode(mode)).map_err(context)?;
    }
    socket.listen(backlog).map_err(context)?;
    Ok((UnixListener::from(OwnedFd::from(socket)), file))
}
// ANCHOR_END: bind

// ANCHOR: clear_stale
/// Makes room at `path`: nothing there is fine; a socket nobody answers on
/// (a crashed server's) is removed, as evio removes it; a socket a server
/// answers on is an `AddrInUse` error, and so is anything that is not a
/// socket (a typo must not delete somebody's file).
fn clear_stale(path: &Path) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(error(e.kind(), path, e)),
        Ok(m) if !m.file_type().is_socket() => Err(error(
            io::ErrorKind::AlreadyExists,
            path,
            "exists and is not a socket",
        )),
        Ok(_) => match answers(path) {
            Ok(()) => Err(error(
                io::ErrorKind::AddrInUse,
                path,
                "in use: a running server answers on this socket \
                 (stop it, or choose another path)",
            )),
            // ECONNREFUSED: a socket file with no listener behind it.
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => fs::remove_file(path),
            Err(e) => Err(error(
                e.kind(),
                path,
                format_args!("cannot tell whether a server answers on it: {e}"),
            )),
        },
    }
}

/// Whether a server listens at `path`: a non-blocking `connect`, which
/// never waits. A full backlog (`EAGAIN`) means a live server too. The live
/// server sees one connection open and close.
fn answers(path: &Path) -> io::Result<()> {
    let probe = Socket::new(Domain::UNIX, Type::STREAM, None)?;
    probe.set_nonblocking(true)?;
    match probe.connect(&SockAddr::unix(path)?) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => Ok(()),
        Err(e) => Err(e),
    }
}
// ANCHOR_END: clear_stale
