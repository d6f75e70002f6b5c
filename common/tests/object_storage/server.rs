//! An emulator process on a free loopback port, and bare HTTP requests to it.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// An emulator started from the program an environment variable names; killed on drop.
pub struct Server {
    child: Child,
    /// The loopback port it listens on.
    pub port: u16,
    program: String,
    args: fn(u16) -> Vec<String>,
}

impl Server {
    /// Starts the program `$env_var` with `args(port)` on a free port; fails the test, saying
    /// `missing`, when the variable is unset.
    pub fn start(env_var: &str, missing: &str, args: fn(u16) -> Vec<String>) -> Self {
        let program = std::env::var(env_var).unwrap_or_else(|_| panic!("{missing}"));
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = spawn(&program, &args(port));
        let server = Self {
            child,
            port,
            program,
            args,
        };
        server.wait_listening();
        server
    }

    /// Kills the emulator and starts a fresh, empty one on the same port.
    pub fn restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.child = spawn(&self.program, &(self.args)(self.port));
        self.wait_listening();
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Sends one request and returns the status code and body.
    pub fn request(&self, head: &str, body: &[u8]) -> (u16, String) {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        write!(
            stream,
            "{head}\r\nHost: 127.0.0.1:{}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            self.port,
            body.len()
        )
        .unwrap();
        stream.write_all(body).unwrap();
        let mut reply = Vec::new();
        stream.read_to_end(&mut reply).unwrap();
        let reply = String::from_utf8_lossy(&reply).into_owned();
        let status = reply
            .split(' ')
            .nth(1)
            .and_then(|code| code.parse().ok())
            .unwrap_or_else(|| panic!("not an HTTP reply: {reply}"));
        (status, reply)
    }

    fn wait_listening(&self) {
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "{} did not start",
                self.program
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn(program: &str, args: &[String]) -> Child {
    Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{program} starts: {e}"))
}
