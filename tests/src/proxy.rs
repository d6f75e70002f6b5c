//! A TCP proxy between an agent and the master that a test can cut and heal.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// Forwards connections to `upstream` until cut.
pub struct LinkProxy {
    /// Where clients connect.
    pub address: SocketAddr,
    state: Arc<ProxyState>,
}

struct ProxyState {
    upstream: SocketAddr,
    cut: AtomicBool,
    /// Both ends of every forwarded connection, so a cut can close them.
    open: Mutex<Vec<TcpStream>>,
}

impl LinkProxy {
    /// Starts a proxy on a free loopback port forwarding to `upstream`.
    pub fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("proxy binds");
        let address = listener.local_addr().expect("proxy address");
        let state = Arc::new(ProxyState {
            upstream,
            cut: AtomicBool::new(false),
            open: Mutex::new(Vec::new()),
        });
        let accept_state = state.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                accept_state.forward(client);
            }
        });
        Self { address, state }
    }

    /// The proxy's URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Closes every forwarded connection and refuses new ones until `heal`.
    pub fn cut(&self) {
        self.state.cut.store(true, Ordering::SeqCst);
        for stream in self.state.open.lock().expect("proxy lock").drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }

    /// Lets connections through again.
    pub fn heal(&self) {
        self.state.cut.store(false, Ordering::SeqCst);
    }
}

impl Drop for LinkProxy {
    fn drop(&mut self) {
        self.cut();
    }
}

impl ProxyState {
    fn forward(self: &Arc<Self>, client: TcpStream) {
        if self.cut.load(Ordering::SeqCst) {
            let _ = client.shutdown(Shutdown::Both);
            return;
        }
        let Ok(server) = TcpStream::connect(self.upstream) else {
            let _ = client.shutdown(Shutdown::Both);
            return;
        };
        let _ = client.set_nodelay(true);
        let _ = server.set_nodelay(true);
        let ends = [&client, &server].map(|s| s.try_clone().expect("socket clone"));
        self.open.lock().expect("proxy lock").extend(ends);
        let (client_read, server_write) = (client.try_clone().expect("clone"), server);
        let (server_read, client_write) = (server_write.try_clone().expect("clone"), client);
        std::thread::spawn(move || pump(client_read, server_write));
        std::thread::spawn(move || pump(server_read, client_write));
    }
}

/// Copies bytes one way until either side closes, then closes both.
fn pump(mut from: TcpStream, mut to: TcpStream) {
    let mut buffer = [0u8; 64 * 1024];
    loop {
        match from.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if to.write_all(&buffer[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
}
