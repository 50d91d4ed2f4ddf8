//! Setting up the AESM sockets as Intel's aesmd does: the directory (0755), the socket (0777 by
//! default, as app pods run under arbitrary uids), a stale socket replaced, a live one left alone;
//! optionally the abstract name `sgx_aesm_socket_base` that Gramine tries first.

use std::fs;
use std::io;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{SocketAddr, UnixListener};
use std::path::{Path, PathBuf};

/// Intel's socket path (`CONFIG_SOCKET_PATH`).
pub const DEFAULT_SOCKET_PATH: &str = "/var/run/aesmd/aesm.socket";
/// The abstract socket name of older aesmd versions, still tried first by Gramine.
pub const ABSTRACT_SOCKET_NAME: &str = "sgx_aesm_socket_base";
/// Longest path a Linux `sockaddr_un` can bind (108 bytes including the terminating NUL).
pub const MAX_SOCKET_PATH: usize = 107;
/// Default socket mode (what aesmd `chmod`s).
pub const DEFAULT_SOCKET_MODE: u32 = 0o777;
/// Mode of a socket directory we create.
pub const SOCKET_DIR_MODE: u32 = 0o755;

/// Why a socket could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    /// The path does not fit into `sockaddr_un`.
    #[error("socket path {} is {len} bytes long; at most {MAX_SOCKET_PATH} fit", path.display())]
    PathTooLong {
        /// The path.
        path: PathBuf,
        /// Its length in bytes.
        len: usize,
    },
    /// Another server answers on the path.
    #[error("another AESM service is already listening on {}", path.display())]
    AlreadyServing {
        /// The path.
        path: PathBuf,
    },
    /// Something that is not a socket is in the way.
    #[error("{} exists and is not a socket; refusing to replace it", path.display())]
    NotASocket {
        /// The path.
        path: PathBuf,
    },
    /// Another process holds the abstract name.
    #[error("the abstract socket name @{name} is taken by another process")]
    AbstractNameTaken {
        /// The name.
        name: String,
    },
    /// A file-system or socket call failed.
    #[error("{action} {}: {source}", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// The path concerned.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
}

/// A bound socket file; the file is removed when this is dropped, unless another process has
/// replaced it in the meantime.
#[derive(Debug)]
pub struct SocketFile {
    path: PathBuf,
    identity: Option<(u64, u64)>,
}

impl SocketFile {
    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        let current = fs::symlink_metadata(&self.path)
            .ok()
            .map(|m| (m.dev(), m.ino()));
        if current.is_some()
            && current == self.identity
            && let Err(e) = fs::remove_file(&self.path)
        {
            tracing::warn!(path = %self.path.display(), error = %e, "cannot remove the AESM socket");
        }
    }
}

/// Checks that `path` can be bound (at most [`MAX_SOCKET_PATH`] bytes, not empty).
pub fn validate_socket_path(path: &Path) -> Result<(), ListenError> {
    let len = path.as_os_str().len();
    if len > MAX_SOCKET_PATH {
        return Err(ListenError::PathTooLong {
            path: path.to_owned(),
            len,
        });
    }
    if len == 0 {
        return Err(ListenError::Io {
            action: "cannot bind",
            path: path.to_owned(),
            source: io::Error::new(io::ErrorKind::InvalidInput, "empty socket path"),
        });
    }
    Ok(())
}

/// Binds the AESM socket at `path` with `mode`: creates a missing directory (0755), replaces a
/// stale socket file, refuses when a server answers there or a non-socket file is in the way.
///
/// The listener is non-blocking, ready for `tokio::net::UnixListener::from_std`.
pub fn bind_socket(path: &Path, mode: u32) -> Result<(UnixListener, SocketFile), ListenError> {
    validate_socket_path(path)?;
    let io_err = |action: &'static str, p: &Path| {
        let p = p.to_owned();
        move |source| ListenError::Io {
            action,
            path: p,
            source,
        }
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && !dir.exists()
    {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(SOCKET_DIR_MODE)
            .create(dir)
            .map_err(io_err("cannot create the socket directory", dir))?;
        // The umask may have taken bits away.
        fs::set_permissions(dir, fs::Permissions::from_mode(SOCKET_DIR_MODE))
            .map_err(io_err("cannot set the mode of", dir))?;
    }
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => match probe(path) {
            Ok(Probe::Live) => {
                return Err(ListenError::AlreadyServing {
                    path: path.to_owned(),
                });
            }
            Ok(Probe::Stale) => {
                tracing::info!(path = %path.display(), "replacing a stale AESM socket");
                fs::remove_file(path).map_err(io_err("cannot remove the stale socket", path))?;
            }
            Err(e) => return Err(io_err("cannot probe the existing socket", path)(e)),
        },
        Ok(_) => {
            return Err(ListenError::NotASocket {
                path: path.to_owned(),
            });
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err("cannot inspect", path)(e)),
    }
    let listener = UnixListener::bind(path).map_err(io_err("cannot bind", path))?;
    let meta = fs::symlink_metadata(path).map_err(io_err("cannot inspect", path))?;
    let guard = SocketFile {
        path: path.to_owned(),
        identity: Some((meta.dev(), meta.ino())),
    };
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .map_err(io_err("cannot set the mode of", path))?;
    listener
        .set_nonblocking(true)
        .map_err(io_err("cannot configure", path))?;
    Ok((listener, guard))
}

enum Probe {
    Live,
    Stale,
}

/// Whether a server listens on the socket file `path`. The connect does not block: a server whose
/// backlog is full (EAGAIN) is alive too.
fn probe(path: &Path) -> io::Result<Probe> {
    let socket = socket2::Socket::new(socket2::Domain::UNIX, socket2::Type::STREAM, None)?;
    socket.set_nonblocking(true)?;
    match socket.connect(&socket2::SockAddr::unix(path)?) {
        Ok(()) => Ok(Probe::Live),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(Probe::Live),
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => Ok(Probe::Stale),
        Err(e) => Err(e),
    }
}

/// Binds the abstract socket `name` (no file; it vanishes with the process). Non-blocking.
pub fn bind_abstract(name: &str) -> Result<UnixListener, ListenError> {
    let shown = PathBuf::from(format!("@{name}"));
    let addr =
        SocketAddr::from_abstract_name(name.as_bytes()).map_err(|source| ListenError::Io {
            action: "invalid abstract name",
            path: shown.clone(),
            source,
        })?;
    let listener = UnixListener::bind_addr(&addr).map_err(|source| {
        if source.kind() == io::ErrorKind::AddrInUse {
            ListenError::AbstractNameTaken {
                name: name.to_owned(),
            }
        } else {
            ListenError::Io {
                action: "cannot bind",
                path: shown.clone(),
                source,
            }
        }
    })?;
    listener
        .set_nonblocking(true)
        .map_err(|source| ListenError::Io {
            action: "cannot configure",
            path: shown,
            source,
        })?;
    Ok(listener)
}

#[cfg(test)]
mod tests {
    use std::os::unix::net::UnixStream;

    use super::*;

    fn short_dir() -> tempfile::TempDir {
        tempfile::Builder::new()
            .prefix("qh")
            .tempdir_in("/tmp")
            .unwrap()
    }

    #[test]
    fn long_paths_are_refused_before_touching_the_file_system() {
        let long = PathBuf::from(format!("/tmp/{}/aesm.socket", "x".repeat(100)));
        assert!(matches!(
            bind_socket(&long, 0o777),
            Err(ListenError::PathTooLong { len, .. }) if len > 107
        ));
        assert!(!long.parent().unwrap().exists());
        let exact = PathBuf::from(format!("/tmp/{}", "y".repeat(102)));
        assert_eq!(exact.as_os_str().len(), 107);
        assert!(validate_socket_path(&exact).is_ok());
    }

    #[test]
    fn creates_the_directory_and_sets_modes_and_removes_the_socket_on_drop() {
        let dir = short_dir();
        let path = dir.path().join("aesmd/aesm.socket");
        let (listener, guard) = bind_socket(&path, 0o777).unwrap();
        let dir_mode = fs::metadata(path.parent().unwrap())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(dir_mode & 0o777, 0o755);
        let sock_mode = fs::symlink_metadata(&path).unwrap().permissions().mode();
        assert_eq!(sock_mode & 0o777, 0o777);
        drop(listener);
        drop(guard);
        assert!(!path.exists());
    }

    #[test]
    fn stale_socket_is_replaced_live_one_refused_file_refused() {
        let dir = short_dir();
        let path = dir.path().join("aesm.socket");
        // A stale socket: bound, then its listener closed.
        drop(UnixListener::bind(&path).unwrap());
        assert!(path.exists());
        let (live, _guard) = bind_socket(&path, 0o700).unwrap();
        let mode = fs::symlink_metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        // Now a server listens there: a second one is refused and the socket survives.
        assert!(matches!(
            bind_socket(&path, 0o777),
            Err(ListenError::AlreadyServing { .. })
        ));
        assert!(UnixStream::connect(&path).is_ok());
        drop(live);

        let file = dir.path().join("not-a-socket");
        fs::write(&file, b"data").unwrap();
        assert!(matches!(
            bind_socket(&file, 0o777),
            Err(ListenError::NotASocket { .. })
        ));
        assert_eq!(fs::read(&file).unwrap(), b"data");
    }

    #[test]
    fn a_live_server_with_a_full_backlog_is_detected_without_blocking() {
        let dir = short_dir();
        let path = dir.path().join("aesm.socket");
        let server =
            socket2::Socket::new(socket2::Domain::UNIX, socket2::Type::STREAM, None).unwrap();
        server
            .bind(&socket2::SockAddr::unix(&path).unwrap())
            .unwrap();
        server.listen(0).unwrap();
        // Fill the backlog: connects that are never accepted, until the kernel says EAGAIN.
        let mut held = Vec::new();
        loop {
            let c =
                socket2::Socket::new(socket2::Domain::UNIX, socket2::Type::STREAM, None).unwrap();
            c.set_nonblocking(true).unwrap();
            match c.connect(&socket2::SockAddr::unix(&path).unwrap()) {
                Ok(()) => held.push(c),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => panic!("{e}"),
            }
            assert!(held.len() < 1000, "the backlog never filled");
        }
        assert!(matches!(
            bind_socket(&path, 0o777),
            Err(ListenError::AlreadyServing { .. })
        ));
        drop(server);
    }

    #[test]
    fn guard_leaves_a_replaced_socket_alone() {
        let dir = short_dir();
        let path = dir.path().join("aesm.socket");
        let (first, guard) = bind_socket(&path, 0o777).unwrap();
        drop(first);
        // Someone else took over the path (the old file is kept elsewhere so that its inode
        // number is not reused).
        fs::rename(&path, dir.path().join("old.socket")).unwrap();
        let _other = UnixListener::bind(&path).unwrap();
        drop(guard);
        assert!(path.exists());
    }

    #[test]
    fn abstract_name_can_be_bound_once() {
        let name = format!("confcom-test-{}", std::process::id());
        let first = bind_abstract(&name).unwrap();
        assert!(matches!(
            bind_abstract(&name),
            Err(ListenError::AbstractNameTaken { .. })
        ));
        drop(first);
        assert!(bind_abstract(&name).is_ok());
    }
}
