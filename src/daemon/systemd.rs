//! systemd's notify protocol: `READY=1`, `RELOADING=1`, `STOPPING=1`, `WATCHDOG=1` and
//! `STATUS=` as datagrams to `$NOTIFY_SOCKET` (a path, or `@name` in the abstract namespace).
//! Without the variable (not under systemd) every message is dropped.

use std::io;
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::time::Duration;

/// Where notifications go.
#[derive(Debug)]
pub struct Notifier {
    target: Option<(UnixDatagram, Target)>,
}

#[derive(Debug)]
enum Target {
    Path(PathBuf),
    Abstract(Vec<u8>),
}

impl Notifier {
    /// From `$NOTIFY_SOCKET`; a notifier that drops everything when it is unset.
    pub fn from_env() -> io::Result<Notifier> {
        let Some(socket) = std::env::var_os("NOTIFY_SOCKET") else {
            return Ok(Notifier { target: None });
        };
        use std::os::unix::ffi::OsStrExt;
        let target = match socket.as_bytes().strip_prefix(b"@") {
            Some(name) => Target::Abstract(name.to_vec()),
            None => Target::Path(PathBuf::from(&socket)),
        };
        Ok(Notifier {
            target: Some((UnixDatagram::unbound()?, target)),
        })
    }

    pub fn enabled(&self) -> bool {
        self.target.is_some()
    }

    /// Sends one message (`KEY=value` lines). A failure is returned for the caller to log;
    /// it never stops the daemon.
    pub fn send(&self, message: &str) -> io::Result<()> {
        let Some((socket, target)) = &self.target else {
            return Ok(());
        };
        match target {
            Target::Path(path) => socket.send_to(message.as_bytes(), path).map(drop),
            Target::Abstract(name) => {
                use std::os::linux::net::SocketAddrExt;
                let address = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
                socket.send_to_addr(message.as_bytes(), &address).map(drop)
            }
        }
    }
}

/// How often to send `WATCHDOG=1`: half of `$WATCHDOG_USEC`, when it is set for this process
/// (`$WATCHDOG_PID` absent or ours).
pub fn watchdog_interval() -> Option<Duration> {
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    if let Ok(pid) = std::env::var("WATCHDOG_PID")
        && pid.parse::<u32>().ok() != Some(std::process::id())
    {
        return None;
    }
    (usec > 0).then(|| Duration::from_micros(usec) / 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_arrive_as_datagrams_on_a_path_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let listener = UnixDatagram::bind(&path).unwrap();
        let notifier = Notifier {
            target: Some((UnixDatagram::unbound().unwrap(), Target::Path(path))),
        };
        notifier.send("READY=1\nSTATUS=2 policies").unwrap();
        let mut buf = [0u8; 256];
        let n = listener.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1\nSTATUS=2 policies");
    }

    #[test]
    fn messages_reach_an_abstract_socket() {
        use std::os::linux::net::SocketAddrExt;
        let name = format!("retentiond-test-{}", std::process::id());
        let address = std::os::unix::net::SocketAddr::from_abstract_name(&name).unwrap();
        let listener = UnixDatagram::bind_addr(&address).unwrap();
        let notifier = Notifier {
            target: Some((
                UnixDatagram::unbound().unwrap(),
                Target::Abstract(name.into_bytes()),
            )),
        };
        notifier.send("WATCHDOG=1").unwrap();
        let mut buf = [0u8; 64];
        let n = listener.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"WATCHDOG=1");
    }

    #[test]
    fn without_a_socket_nothing_is_sent_and_nothing_fails() {
        let notifier = Notifier { target: None };
        assert!(!notifier.enabled());
        notifier.send("READY=1").unwrap();
    }
}
