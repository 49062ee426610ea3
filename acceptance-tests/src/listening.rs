//! Loopback ports and who holds them. A server a test starts on a port from
//! [`crate::free_port`] may lose that port to another test's server, and "something accepts
//! connections there" would then pass for ready while the test talks to a stranger: which
//! process listens is read from `/proc`. A port a test means to stay closed is held
//! ([`ClosedPort`]).

use std::fs;

/// True if process `pid` holds a socket listening on TCP `127.0.0.1:port` (or on every
/// IPv4 address) in this network namespace.
pub fn listens(pid: u32, port: u16) -> bool {
    let Ok(table) = fs::read_to_string("/proc/net/tcp") else {
        return false;
    };
    let inodes: Vec<String> = table
        .lines()
        .skip(1)
        .filter_map(|line| listening_inode(line, port))
        .collect();
    if inodes.is_empty() {
        return false;
    }
    let Ok(fds) = fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    fds.flatten().any(|fd| {
        fs::read_link(fd.path()).is_ok_and(|target| {
            let target = target.to_string_lossy();
            inodes.iter().any(|i| target == format!("socket:[{i}]"))
        })
    })
}

/// The socket inode of a `/proc/net/tcp` line that listens on `port` of 127.0.0.1 or
/// 0.0.0.0 (`local_address` is `ADDR:PORT` in hex, the address in host byte order; state
/// `0A` is LISTEN).
fn listening_inode(line: &str, port: u16) -> Option<String> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    let (address, hex_port) = fields.get(1)?.split_once(':')?;
    let listening = fields.get(3) == Some(&"0A");
    let ours = u16::from_str_radix(hex_port, 16).ok() == Some(port)
        && (address == "0100007F" || address == "00000000");
    (listening && ours).then(|| fields.get(9).map(|s| s.to_string()))?
}

/// A loopback port that refuses every connection for as long as this value lives: a socket
/// is bound to it and never listens, so the kernel answers connections with a reset and no
/// other test's server can take the port meanwhile (as one can take a port that
/// [`crate::free_port`] found free and a test meant to stay closed).
pub struct ClosedPort {
    _socket: std::os::fd::OwnedFd,
    pub port: u16,
}

impl ClosedPort {
    pub fn new() -> ClosedPort {
        use std::mem::size_of;
        use std::os::fd::{FromRawFd, OwnedFd};
        // SAFETY: plain socket calls on a descriptor this function owns from creation; the
        // address structs are zeroed C structs of the sizes passed.
        unsafe {
            let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
            assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
            let socket = OwnedFd::from_raw_fd(fd);
            let mut address: libc::sockaddr_in = std::mem::zeroed();
            address.sin_family = libc::AF_INET as libc::sa_family_t;
            address.sin_addr.s_addr = u32::from(std::net::Ipv4Addr::LOCALHOST).to_be();
            let mut length = size_of::<libc::sockaddr_in>() as libc::socklen_t;
            let pointer = &mut address as *mut libc::sockaddr_in as *mut libc::sockaddr;
            let bound = libc::bind(fd, pointer, length);
            assert_eq!(bound, 0, "bind: {}", std::io::Error::last_os_error());
            let named = libc::getsockname(fd, pointer, &mut length);
            assert_eq!(named, 0, "getsockname: {}", std::io::Error::last_os_error());
            ClosedPort {
                _socket: socket,
                port: u16::from_be(address.sin_port),
            }
        }
    }

    /// `127.0.0.1:PORT`.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Default for ClosedPort {
    fn default() -> Self {
        ClosedPort::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_closed_port_refuses_connections_and_cannot_be_taken() {
        let closed = ClosedPort::new();
        let refused = std::net::TcpStream::connect(closed.address()).unwrap_err();
        assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused);
        assert!(std::net::TcpListener::bind(closed.address()).is_err());
        assert!(!listens(std::process::id(), closed.port));
    }

    #[test]
    fn this_process_listens_where_it_bound_and_nowhere_else() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        assert!(listens(std::process::id(), port));
        // PID 1 does not hold our socket.
        assert!(!listens(1, port));
        drop(listener);
        assert!(!listens(std::process::id(), port));
    }
}
