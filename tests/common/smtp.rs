//! A scripted SMTP server on loopback, for tests that must see what a
//! server does to the sender: 451, 550 for one recipient, 535, silence, a
//! server that is down and comes back, a slow server.
//!
//! It speaks just enough ESMTP for lettre (EHLO, AUTH, MAIL, RCPT, DATA,
//! RSET, NOOP, QUIT), one thread per connection. The script can be changed
//! while it runs. The mailin-embedded crate was the first choice, but it
//! cannot be told to answer 451, 550 or 535, and it pulls a second TLS
//! provider into every dev build.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// What the server answers to each command.
#[derive(Clone, Debug)]
pub struct Script {
    /// The reply to AUTH.
    pub auth: String,
    /// The reply to MAIL FROM.
    pub mail: String,
    /// The reply to RCPT TO.
    pub rcpt: String,
    /// The reply after DATA's final dot.
    pub data: String,
    /// Recipients (substring match) refused at RCPT with this reply.
    pub refuse: Vec<(String, String)>,
    /// Replies to use, in turn, at RCPT before `rcpt` (e.g. one 451).
    pub rcpt_first: Vec<String>,
    /// Accept connections and never say a word.
    pub silent: bool,
    /// Wait this long before answering DATA's final dot.
    pub data_delay: Duration,
    /// Holds the answer to one DATA's final dot, on whichever server
    /// sharing it gets there first once it is armed (see [`Stall`]).
    pub stall: Option<Arc<Stall>>,
}

/// A message held mid-send: its whole text has reached the server, whose
/// answer the sender now waits for. A test arms the stall, waits for a
/// message to be held, kills the sender, then releases it. The held message
/// is not accepted: its sender never heard the server take it (RFC 5321
/// makes the server responsible only once it has answered 250), so it must
/// be sent again.
#[derive(Debug, Default)]
pub struct Stall {
    state: Mutex<StallState>,
    changed: Condvar,
}

#[derive(Debug, Default)]
enum StallState {
    #[default]
    Off,
    Armed,
    /// The port of the server holding it, and the message.
    Holding(u16, Received),
    Released,
}

impl Stall {
    /// The next DATA to end on a server with this stall is held.
    pub fn arm(&self) {
        *lock(&self.state) = StallState::Armed;
    }

    /// Waits (at most `timeout`) for a message to be held: the port of the
    /// server holding it, and the message.
    pub fn wait_held(&self, timeout: Duration) -> Option<(u16, Received)> {
        let deadline = Instant::now() + timeout;
        let mut state = lock(&self.state);
        loop {
            if let StallState::Holding(port, message) = &*state {
                return Some((*port, message.clone()));
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            state = self
                .changed
                .wait_timeout(state, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// Lets the held session go on (its sender is gone by now).
    pub fn release(&self) {
        *lock(&self.state) = StallState::Released;
        self.changed.notify_all();
    }

    /// Holds `message` if armed; returns once released. False when the
    /// stall was not armed (the message goes through as usual).
    fn hold(&self, port: u16, message: &Received) -> bool {
        let mut state = lock(&self.state);
        if !matches!(*state, StallState::Armed) {
            return false;
        }
        *state = StallState::Holding(port, message.clone());
        self.changed.notify_all();
        while matches!(*state, StallState::Holding(..)) {
            state = self
                .changed
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
        true
    }
}

impl Default for Script {
    fn default() -> Self {
        Self {
            auth: "235 2.7.0 Authentication successful".to_owned(),
            mail: "250 2.1.0 OK".to_owned(),
            rcpt: "250 2.1.5 OK".to_owned(),
            data: "250 2.0.0 queued".to_owned(),
            refuse: Vec::new(),
            rcpt_first: Vec::new(),
            silent: false,
            data_delay: Duration::ZERO,
            stall: None,
        }
    }
}

/// One message the server accepted.
#[derive(Debug, Clone)]
pub struct Received {
    /// The RCPT TO paths, as sent (`<a@example.org>`).
    pub rcpt: Vec<String>,
    /// The message, CRLF line ends, dot-stuffing undone.
    pub data: String,
}

impl Received {
    /// The first value of a header, unfolded.
    pub fn header(&self, name: &str) -> Option<String> {
        header(&self.data, name)
    }
}

/// The first value of a header in a raw message, unfolded.
pub fn header(data: &str, name: &str) -> Option<String> {
    let head = data.split("\r\n\r\n").next().unwrap_or("");
    let unfolded = head.replace("\r\n ", " ").replace("\r\n\t", " ");
    let prefix = format!("{}:", name.to_ascii_lowercase());
    unfolded
        .split("\r\n")
        .find(|line| line.to_ascii_lowercase().starts_with(&prefix))
        .map(|line| line[prefix.len()..].trim().to_owned())
}

/// A running server. Dropping it stops accepting connections.
pub struct SmtpServer {
    port: u16,
    script: Arc<Mutex<Script>>,
    inbox: Arc<Mutex<Vec<Received>>>,
    stop: Arc<AtomicBool>,
}

impl SmtpServer {
    /// Starts a server on a free loopback port.
    pub fn start(script: Script) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        Self::serve(listener, script)
    }

    /// Starts a server on a given port (one that was free: a server that
    /// was down comes up).
    pub fn start_on(port: u16, script: Script) -> Self {
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind the port again");
        Self::serve(listener, script)
    }

    fn serve(listener: TcpListener, script: Script) -> Self {
        let port = listener.local_addr().expect("addr").port();
        listener.set_nonblocking(true).expect("nonblocking");
        let server = Self {
            port,
            script: Arc::new(Mutex::new(script)),
            inbox: Arc::default(),
            stop: Arc::default(),
        };
        let (script, inbox, stop) = (
            Arc::clone(&server.script),
            Arc::clone(&server.inbox),
            Arc::clone(&server.stop),
        );
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let _ = stream.set_nonblocking(false);
                        let (script, inbox) = (Arc::clone(&script), Arc::clone(&inbox));
                        std::thread::spawn(move || {
                            let silent = lock(&script).silent;
                            if silent {
                                std::thread::sleep(Duration::from_secs(60));
                            } else {
                                let _ = session(stream, &script, &inbox);
                            }
                        });
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        server
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Changes the script for the next commands.
    pub fn set_script(&self, f: impl FnOnce(&mut Script)) {
        f(&mut lock(&self.script));
    }

    /// Every message accepted so far.
    pub fn received(&self) -> Vec<Received> {
        lock(&self.inbox).clone()
    }

    /// Waits until at least `count` messages arrived, or `timeout` passed;
    /// returns what arrived.
    pub fn wait_for(&self, count: usize, timeout: Duration) -> Vec<Received> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let received = self.received();
            if received.len() >= count || std::time::Instant::now() >= deadline {
                return received;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// A loopback port with nothing listening on it (a server that is down).
pub fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn session(
    stream: TcpStream,
    script: &Mutex<Script>,
    inbox: &Mutex<Vec<Received>>,
) -> std::io::Result<()> {
    let port = stream.local_addr()?.port();
    let mut out = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    let mut reply = |line: &str| out.write_all(format!("{line}\r\n").as_bytes());
    reply("220 test.local ESMTP ready")?;
    let mut rcpt = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let command = line.trim_end().to_ascii_uppercase();
        let verb = command.split([' ', ':']).next().unwrap_or("");
        match verb {
            "EHLO" | "HELO" => reply("250-test.local\r\n250-AUTH PLAIN LOGIN\r\n250 8BITMIME")?,
            "AUTH" => {
                let answer = lock(script).auth.clone();
                reply(&answer)?;
            }
            "MAIL" => {
                rcpt.clear();
                let answer = lock(script).mail.clone();
                reply(&answer)?;
            }
            "RCPT" => {
                let path = line.trim_end()[8..].trim().to_owned();
                let answer = {
                    let mut script = lock(script);
                    if let Some((_, refusal)) =
                        script.refuse.iter().find(|(who, _)| path.contains(who))
                    {
                        refusal.clone()
                    } else if !script.rcpt_first.is_empty() {
                        script.rcpt_first.remove(0)
                    } else {
                        script.rcpt.clone()
                    }
                };
                if answer.starts_with('2') {
                    rcpt.push(path);
                }
                reply(&answer)?;
            }
            "DATA" => {
                reply("354 go ahead")?;
                let mut data = String::new();
                loop {
                    let mut body_line = String::new();
                    if reader.read_line(&mut body_line)? == 0 {
                        return Ok(());
                    }
                    if body_line == ".\r\n" {
                        break;
                    }
                    let body_line = body_line
                        .strip_prefix('.')
                        .filter(|l| l.starts_with('.'))
                        .unwrap_or(&body_line);
                    data.push_str(body_line);
                }
                let (answer, delay, stall) = {
                    let script = lock(script);
                    (script.data.clone(), script.data_delay, script.stall.clone())
                };
                std::thread::sleep(delay);
                let message = Received {
                    rcpt: rcpt.clone(),
                    data,
                };
                if stall.is_some_and(|stall| stall.hold(port, &message)) {
                    // Never accepted: the sender is gone, or about to be.
                    let _ = reply("451 4.3.0 held by the test");
                    return Ok(());
                }
                if answer.starts_with('2') {
                    lock(inbox).push(message);
                }
                reply(&answer)?;
            }
            "RSET" | "NOOP" => {
                rcpt.clear();
                reply("250 OK")?;
            }
            "QUIT" => {
                reply("221 bye")?;
                return Ok(());
            }
            _ => reply("502 5.5.2 not implemented")?,
        }
    }
}
