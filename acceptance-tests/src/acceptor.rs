//! A loopback TCP server for the kit's proxies: it accepts connections on a free port,
//! serves each on a thread of its own, and on drop stops accepting and shuts every open
//! connection, so a test's proxy leaves nothing behind.

use std::collections::HashMap;
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};

/// A server's accepting side: stops and shuts its connections when dropped.
pub struct Acceptor {
    address: String,
    stop: Arc<AtomicBool>,
    clients: Arc<Mutex<HashMap<u64, TcpStream>>>,
    acceptor: Option<JoinHandle<()>>,
}

/// A listening socket, not serving yet: its address is known before the server is made.
pub struct Bound {
    listener: TcpListener,
    address: String,
}

impl Acceptor {
    /// Listens on `127.0.0.1:0` (`what` names the server in a failure).
    pub fn bind(what: &str) -> Bound {
        let listener =
            TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("binding {what}: {e}"));
        let address = listener.local_addr().expect("a bound address").to_string();
        Bound { listener, address }
    }

    /// `127.0.0.1:PORT`.
    pub fn address(&self) -> &str {
        &self.address
    }
}

impl Bound {
    /// `127.0.0.1:PORT`.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// Serves each connection with `serve`, given its number, on a thread of its own.
    pub fn serve(self, serve: impl Fn(u64, TcpStream) + Send + Sync + 'static) -> Acceptor {
        let Bound { listener, address } = self;
        let stop = Arc::new(AtomicBool::new(false));
        let clients: Arc<Mutex<HashMap<u64, TcpStream>>> = Arc::default();
        let serve = Arc::new(serve);
        let (stopping, tracked) = (stop.clone(), clients.clone());
        let acceptor = thread::spawn(move || {
            let next = AtomicU64::new(0);
            for client in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = client else { continue };
                let id = next.fetch_add(1, Ordering::SeqCst);
                if let Ok(handle) = client.try_clone() {
                    lock(&tracked).insert(id, handle);
                }
                let (serve, tracked) = (serve.clone(), tracked.clone());
                thread::spawn(move || {
                    serve(id, client);
                    lock(&tracked).remove(&id);
                });
            }
        });
        Acceptor {
            address,
            stop,
            clients,
            acceptor: Some(acceptor),
        }
    }
}

fn lock(
    clients: &Mutex<HashMap<u64, TcpStream>>,
) -> std::sync::MutexGuard<'_, HashMap<u64, TcpStream>> {
    clients.lock().unwrap_or_else(|p| p.into_inner())
}

impl Drop for Acceptor {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the acceptor, which then sees the flag.
        let _ = TcpStream::connect(&self.address);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
        for client in lock(&self.clients).values() {
            let _ = client.shutdown(Shutdown::Both);
        }
    }
}
