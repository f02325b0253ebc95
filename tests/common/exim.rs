//! A real MTA for integration tests: Debian's exim4 (exim4-daemon-light),
//! started in the foreground on two free loopback ports with a config, a
//! CA and a leaf certificate generated into a temporary directory, and
//! delivering every accepted message to a Maildir there.
//!
//! - `starttls_port` is plain SMTP that offers STARTTLS (a submission port);
//! - `tls_port` is TLS from the first byte (`tls_on_connect_ports`);
//! - AUTH PLAIN and LOGIN are offered only once the connection is
//!   encrypted, for the one account [`USER`]/[`PASSWORD`], and a recipient
//!   at [`DOMAIN`] is accepted only from an authenticated client, so a
//!   delivered message proves that TLS and AUTH both happened;
//! - nothing does DNS: the router only accepts [`DOMAIN`] and the daemon
//!   makes no reverse or ident lookups.
//!
//! Tests include this file with `#[path = "common/exim.rs"] mod exim;`
//! rather than through `common/mod.rs`, so that only the tests that need
//! an MTA compile it. Use [`binary`] to find out whether exim is installed
//! (and skip when it is not), then [`Exim::start`].
//!
//! Decisions that are not obvious, all forced by how Debian builds exim:
//!
//! - The config is passed with `-C`. Debian's exim takes `-C` from root
//!   and keeps its privileges; from anyone else it drops them and runs as
//!   the caller, which also works on a high port. Either way, when the
//!   daemon re-executes exim to deliver a message it does so as the exim
//!   user, and exim drops privilege again ("exim user lost privilege for
//!   using -C option"). So the delivery runs as the exim user and cannot
//!   switch to anyone else: `exim_user`, `exim_group` and the transport's
//!   `user`/`group` must all be one account, the Debian-exim system user
//!   when the test runs as root, the caller otherwise. Root itself could
//!   never be that account: the binary is built with `FIXED_NEVER_USERS`
//!   = 0, which no `never_users` setting can lift.
//! - As root, everything exim writes (spool, logs, Maildir) is owned by
//!   that account, and the temporary directory is made traversable (0755)
//!   and is created under /tmp, not `$TMPDIR`, which may sit under a 0700
//!   home directory that the exim user cannot enter.
//! - `pid_file_path` is set so a daemon started by root does not overwrite
//!   /run/exim4/exim.pid, which belongs to the system's own exim.
//! - `-bdf` keeps the daemon in the foreground, so the child we spawn is
//!   the daemon itself, and it and its children stay in the process group
//!   it is started in, which is how they are stopped. No `-q`: without
//!   queue runs a deferred message stays in the spool and the test fails
//!   with exim's log instead of passing on a later retry.

#![allow(dead_code)]

use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The only account the MTA accepts AUTH for.
pub const USER: &str = "tidings";
/// Its password. Letters and dashes only: it is written into the exim
/// config, where `$`, `{`, `}` and `\` would be expansion syntax.
pub const PASSWORD: &str = "correct-horse-battery-staple";
/// The domain the MTA accepts mail for; every recipient must be here.
pub const DOMAIN: &str = "example.org";
/// The name the MTA gives itself in its greeting and `Received:` header.
pub const HOSTNAME: &str = "mta.test";

/// The exim binary, if one is installed: Debian's `/usr/sbin/exim4`, else
/// `exim4` or `exim` on `PATH`.
pub fn binary() -> Option<PathBuf> {
    let fixed = [Path::new("/usr/sbin/exim4"), Path::new("/usr/sbin/exim")];
    if let Some(found) = fixed.iter().find(|p| p.is_file()) {
        return Some(found.to_path_buf());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| [dir.join("exim4"), dir.join("exim")])
        .find(|p| p.is_file())
}

/// A running exim daemon and the files around it. Dropping it kills the
/// daemon and its children and removes the directory.
pub struct Exim {
    /// Plain SMTP with STARTTLS offered.
    pub starttls_port: u16,
    /// Implicit TLS.
    pub tls_port: u16,
    /// The CA that signed the server's certificate (PEM), for `ca_file`.
    pub ca_file: PathBuf,
    /// Where delivered messages land (`new/`, `cur/`, `tmp/`).
    pub maildir: PathBuf,
    dir: tempfile::TempDir,
    child: Child,
}

/// The account exim runs and delivers as (see the module docs).
#[derive(Clone, Copy)]
struct RunAs {
    uid: u32,
    gid: u32,
}

impl RunAs {
    fn pick() -> Self {
        // SAFETY: geteuid and getegid cannot fail and touch no memory.
        let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
        if uid != 0 {
            return Self { uid, gid };
        }
        for name in [c"Debian-exim", c"exim", c"mail"] {
            if let Some(found) = user_ids(name) {
                return found;
            }
        }
        panic!("running as root, but there is no Debian-exim, exim or mail user to run exim as");
    }
}

/// The uid and gid of the user `name`, if there is one. getpwnam_r, not
/// getpwnam: tests run on parallel threads, and getpwnam returns a buffer
/// shared by all of them.
fn user_ids(name: &std::ffi::CStr) -> Option<RunAs> {
    let mut buffer = vec![0 as libc::c_char; 16 * 1024];
    // SAFETY: an all-zero passwd (null pointers, zero ids) is a valid value
    // of the C struct; getpwnam_r only writes into it.
    let mut record: libc::passwd = unsafe { std::mem::zeroed() };
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer is valid for the call, and `buffer.len()` is
    // the true size of `buffer`; the strings the record points into live
    // in `buffer`, but only the two ids are read, after the call.
    let status = unsafe {
        libc::getpwnam_r(
            name.as_ptr(),
            &mut record,
            buffer.as_mut_ptr(),
            buffer.len(),
            &mut result,
        )
    };
    (status == 0 && !result.is_null()).then_some(RunAs {
        uid: record.pw_uid,
        gid: record.pw_gid,
    })
}

impl Exim {
    /// Generates the certificates and config and starts the daemon on two
    /// free loopback ports, returning once both accept connections.
    /// Panics, with exim's own output, if it does not come up.
    pub fn start(binary: &Path) -> Self {
        let run_as = RunAs::pick();
        let base = if Path::new("/tmp").is_dir() {
            PathBuf::from("/tmp")
        } else {
            std::env::temp_dir()
        };
        let dir = tempfile::Builder::new()
            .prefix("tidings-exim-")
            .tempdir_in(base)
            .expect("tempdir for exim");
        set_mode(dir.path(), 0o755);
        for sub in ["spool", "log", "Maildir", "tls"] {
            let path = dir.path().join(sub);
            std::fs::create_dir(&path).expect("exim directory");
            set_mode(&path, 0o755);
            if sub != "tls" {
                std::os::unix::fs::chown(&path, Some(run_as.uid), Some(run_as.gid))
                    .expect("chown for the exim user");
            }
        }
        let tls = write_certificates(&dir.path().join("tls"));

        // Another process can take a port between our probe and exim's
        // bind; exim then exits at once, and a second pair is tried.
        let mut failures = String::new();
        for _ in 0..3 {
            let (starttls_port, tls_port) = free_ports();
            let config = dir.path().join("exim.conf");
            std::fs::write(
                &config,
                config_text(dir.path(), &tls, run_as, starttls_port, tls_port),
            )
            .expect("write exim.conf");
            let stderr = std::fs::File::create(dir.path().join("exim.stderr")).expect("stderr");
            let mut child = Command::new(binary)
                .arg("-C")
                .arg(&config)
                .arg("-bdf")
                // A process group of its own, so that `stop` ends the
                // daemon's children (receiving and delivering) with it.
                .process_group(0)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(stderr)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot run {}: {e}", binary.display()));
            match wait_until_listening(&mut child, starttls_port) {
                Ok(()) => {
                    return Self {
                        starttls_port,
                        tls_port,
                        ca_file: tls.ca,
                        maildir: dir.path().join("Maildir"),
                        dir,
                        child,
                    };
                }
                Err(why) => {
                    stop(&mut child);
                    failures.push_str(&format!("{why}\n{}", read_log(dir.path())));
                }
            }
        }
        panic!("exim did not start:\n{failures}");
    }

    /// exim's main and panic logs and whatever it wrote to stderr (when it
    /// runs without root privilege it logs there), for failure messages.
    pub fn log(&self) -> String {
        read_log(self.dir.path())
    }

    /// Every message delivered so far, oldest first. A Maildir delivery is
    /// written in `tmp/` and renamed into `new/`, so every file read here
    /// is complete.
    pub fn messages(&self) -> Vec<Delivered> {
        let mut found: Vec<(std::time::SystemTime, PathBuf)> = Vec::new();
        for sub in ["new", "cur"] {
            let Ok(entries) = std::fs::read_dir(self.maildir.join(sub)) else {
                continue;
            };
            for entry in entries.flatten() {
                let modified = entry
                    .metadata()
                    .and_then(|m| m.modified())
                    .unwrap_or(std::time::UNIX_EPOCH);
                found.push((modified, entry.path()));
            }
        }
        found.sort();
        found
            .into_iter()
            .map(|(_, path)| {
                let raw = std::fs::read(&path).expect("read a delivered message");
                Delivered::parse(path, &raw)
            })
            .collect()
    }

    /// Polls the Maildir until at least `count` messages are there, for up
    /// to `timeout`; panics with exim's log if they do not arrive.
    pub fn wait_for_messages(&self, count: usize, timeout: Duration) -> Vec<Delivered> {
        let deadline = Instant::now() + timeout;
        loop {
            let messages = self.messages();
            if messages.len() >= count {
                return messages;
            }
            assert!(
                Instant::now() < deadline,
                "{} message(s) in {} after {timeout:?}, expected {count}\n{}",
                messages.len(),
                self.maildir.display(),
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// How a client reaches this exim: the port, and what tidings' `[mail]
/// tls` says about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// STARTTLS on `starttls_port`, required.
    Starttls,
    /// TLS from the first byte, on `tls_port`.
    Implicit,
    /// Clear text on `starttls_port`: exim offers no AUTH there.
    Clear,
}

impl Security {
    /// The value of `[mail] tls`.
    pub fn tls(self) -> &'static str {
        match self {
            Self::Starttls => "starttls",
            Self::Implicit => "implicit",
            Self::Clear => "none",
        }
    }
}

impl Exim {
    /// The port for `security`.
    pub fn port(&self, security: Security) -> u16 {
        match security {
            Security::Starttls | Security::Clear => self.starttls_port,
            Security::Implicit => self.tls_port,
        }
    }

    /// The `[mail]` section of a tidings config that sends through this
    /// exim as [`USER`], trusting its CA. `from` is the sender (a mailbox
    /// such as `Briefings <briefings@example.org>`); `password` is the line
    /// that says where the password is, `password_file = '…'` or
    /// `password_env = "…"`.
    pub fn mail_section(&self, security: Security, from: &str, password: &str) -> String {
        let ca = self.ca_file.to_str().expect("utf-8 path");
        // TOML literal strings: a temporary path needs no escapes, and
        // cannot hold a quote.
        assert!(!ca.contains('\''), "{ca}");
        format!(
            "[mail]\n\
             from = \"{from}\"\n\
             transport = \"smtp\"\n\
             host = \"localhost\"\n\
             port = {port}\n\
             tls = \"{tls}\"\n\
             username = \"{USER}\"\n\
             {password}\n\
             ca_file = '{ca}'\n\
             timeout = \"20s\"\n",
            port = self.port(security),
            tls = security.tls(),
        )
    }
}

impl Drop for Exim {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}

/// Waits until exim greets on the STARTTLS port, or exits, or 10 s pass.
/// One port is enough: exim binds and listens on all its ports before it
/// accepts on any. The probe says QUIT and waits for the answer, so exim
/// logs nothing about it; a bare connect would leave an "unexpected
/// disconnection" (or, on the TLS port, a handshake error) in the log, from
/// a child that may write it after the test has removed the directory.
fn wait_until_listening(child: &mut Child, port: u16) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = child.try_wait().expect("exim status") {
            return Err(format!("exim exited with {status}"));
        }
        if greets(port) {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("exim did not answer on port {port} within 10 s"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Whether an SMTP server on `port` says 220 and then 221 to QUIT.
fn greets(port: u16) -> bool {
    use std::io::{BufRead as _, BufReader, Write as _};
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let Ok(stream) = TcpStream::connect_timeout(&address, Duration::from_millis(500)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let Ok(mut writer) = stream.try_clone() else {
        return false;
    };
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() || !line.starts_with("220 ") {
        return false;
    }
    line.clear();
    writer.write_all(b"QUIT\r\n").is_ok()
        && reader.read_line(&mut line).is_ok()
        && line.starts_with("221 ")
}

/// Stops the daemon and every process it forked (they share the process
/// group it was started in): SIGKILL, because nothing of this exim needs a
/// clean end, and a process that dies at once writes no more log lines
/// into the directory about to be removed. The group is signalled before
/// the daemon is reaped, while its pid, and so the group id, cannot have
/// been reused.
fn stop(child: &mut Child) {
    if matches!(child.try_wait(), Ok(Some(_))) {
        return;
    }
    if let Ok(pid) = libc::pid_t::try_from(child.id()) {
        // SAFETY: kill has no memory effects; `-pid` names the process
        // group this test created for the daemon (see `Exim::start`).
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
        }
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// exim's main and panic logs and whatever it wrote to stderr (when it
/// runs without root privilege it logs there).
fn read_log(dir: &Path) -> String {
    let mut out = String::new();
    for name in ["log/mainlog", "log/paniclog", "exim.stderr"] {
        if let Ok(text) = std::fs::read_to_string(dir.join(name)) {
            if !text.is_empty() {
                out.push_str(&format!("--- exim {name}\n{text}"));
            }
        }
    }
    out
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
}

/// Two distinct free ports on 127.0.0.1: both listeners are held until
/// both ports are known, so the kernel cannot hand out the same one twice.
fn free_ports() -> (u16, u16) {
    let first = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
    let second = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
    (
        first.local_addr().expect("addr").port(),
        second.local_addr().expect("addr").port(),
    )
}

/// The PEM files exim and its clients need.
struct Tls {
    ca: PathBuf,
    certificate: PathBuf,
    key: PathBuf,
}

/// The CA and `localhost` certificates, written out. Files are 0644: exim
/// reads them after dropping to the exim user, and the key protects nothing
/// beyond this test.
fn write_certificates(dir: &Path) -> Tls {
    let pems = crate::certs::localhost_certificates();
    let tls = Tls {
        ca: dir.join("ca.pem"),
        certificate: dir.join("localhost.pem"),
        key: dir.join("localhost.key"),
    };
    for (path, pem) in [
        (&tls.ca, pems.ca),
        (&tls.certificate, pems.certificate),
        (&tls.key, pems.key),
    ] {
        std::fs::write(path, pem).expect("write PEM");
        set_mode(path, 0o644);
    }
    tls
}

/// The exim configuration, with `@NAME@` placeholders (exim's own syntax
/// is full of braces, which `format!` would need doubled). No file of the
/// system's configuration is read.
const CONFIG: &str = r#"# Generated by tests/common/exim.rs for one test run.
exim_user = @UID@
exim_group = @GID@
primary_hostname = @HOSTNAME@
qualify_domain = @DOMAIN@
domainlist local_domains = @DOMAIN@

spool_directory = @DIR@/spool
log_file_path = @DIR@/log/%slog
pid_file_path = @DIR@/exim.pid
# I=[127.0.0.1]:PORT on each arrival, so a test can tell which port a
# message came in on.
log_selector = +incoming_interface

local_interfaces = 127.0.0.1
daemon_smtp_ports = @STARTTLS_PORT@ : @TLS_PORT@
tls_on_connect_ports = @TLS_PORT@
tls_advertise_hosts = *
tls_certificate = @CERTIFICATE@
tls_privatekey = @KEY@

# No DNS and no ident: nothing here may leave the machine or wait on it.
host_lookup =
rfc1413_hosts =
# Children get an empty environment (and exim does not warn about it).
keep_environment =
# A nearly full disk must not turn into a 452 in a test.
check_spool_space = 0
check_log_space = 0

acl_smtp_rcpt = check_rcpt

begin acl

check_rcpt:
  accept  authenticated = *
          domains = +local_domains
  deny    message = 5.7.1 authenticate first, and send only to @@DOMAIN@

begin routers

everything:
  driver = accept
  domains = +local_domains
  transport = maildir

begin transports

maildir:
  driver = appendfile
  directory = @DIR@/Maildir
  maildir_format
  create_directory
  envelope_to_add
  return_path_add
  delivery_date_add
  user = @UID@
  group = @GID@
  mode = 0644

begin authenticators

# Both offered only on an encrypted connection. PLAIN sends user and
# password as $auth2 and $auth3, LOGIN as $auth1 and $auth2.
plain:
  driver = plaintext
  public_name = PLAIN
  server_prompts = :
  server_condition = ${if and{{eq{$auth2}{@USER@}}{eq{$auth3}{@PASSWORD@}}}}
  server_set_id = $auth2
  server_advertise_condition = ${if def:tls_in_cipher}

login:
  driver = plaintext
  public_name = LOGIN
  server_prompts = Username:: : Password::
  server_condition = ${if and{{eq{$auth1}{@USER@}}{eq{$auth2}{@PASSWORD@}}}}
  server_set_id = $auth1
  server_advertise_condition = ${if def:tls_in_cipher}
"#;

fn config_text(dir: &Path, tls: &Tls, run_as: RunAs, starttls_port: u16, tls_port: u16) -> String {
    let text = CONFIG
        .replace("@DIR@", &dir.display().to_string())
        .replace("@UID@", &run_as.uid.to_string())
        .replace("@GID@", &run_as.gid.to_string())
        .replace("@HOSTNAME@", HOSTNAME)
        .replace("@DOMAIN@", DOMAIN)
        .replace("@STARTTLS_PORT@", &starttls_port.to_string())
        .replace("@TLS_PORT@", &tls_port.to_string())
        .replace("@CERTIFICATE@", &tls.certificate.display().to_string())
        .replace("@KEY@", &tls.key.display().to_string())
        .replace("@USER@", USER)
        .replace("@PASSWORD@", PASSWORD);
    let left = regex::Regex::new("@[A-Z_]+@").expect("regex");
    assert!(!left.is_match(&text), "a placeholder is left in:\n{text}");
    text
}

/// One delivered message, as exim wrote it to the Maildir (LF line ends).
#[derive(Debug, Clone)]
pub struct Delivered {
    /// The Maildir file.
    pub path: PathBuf,
    /// The whole message, with line ends as LF.
    pub raw: String,
}

impl Delivered {
    fn parse(path: PathBuf, raw: &[u8]) -> Self {
        let raw = String::from_utf8_lossy(raw).replace("\r\n", "\n");
        Self { path, raw }
    }

    /// The header block and the body.
    fn split(&self) -> (&str, &str) {
        self.raw.split_once("\n\n").unwrap_or((&self.raw, ""))
    }

    /// Every header in order, unfolded, with RFC 2047 encoded words in
    /// the value decoded.
    pub fn headers(&self) -> Vec<(String, String)> {
        headers_of(self.split().0)
    }

    /// Every value of header `name` (case-insensitive), in order.
    pub fn header_all(&self, name: &str) -> Vec<String> {
        self.headers()
            .into_iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
            .collect()
    }

    /// The first value of header `name`.
    pub fn header(&self, name: &str) -> Option<String> {
        self.header_all(name).into_iter().next()
    }

    /// The body, undecoded.
    pub fn body(&self) -> &str {
        self.split().1
    }

    /// The parts of a multipart message, in order, bodies decoded; empty
    /// for a single-part message.
    pub fn parts(&self) -> Vec<Part> {
        let Some(content_type) = self.header("Content-Type") else {
            return Vec::new();
        };
        let Some(boundary) = parameter(&content_type, "boundary") else {
            return Vec::new();
        };
        let delimiter = format!("--{boundary}");
        let mut parts = Vec::new();
        // Text before the first delimiter is the preamble; after the
        // closing `--boundary--` the epilogue.
        for chunk in self.body().split(&delimiter).skip(1) {
            if chunk.starts_with("--") {
                break;
            }
            let chunk = chunk.strip_prefix('\n').unwrap_or(chunk);
            let chunk = chunk.strip_suffix('\n').unwrap_or(chunk);
            let (head, body) = chunk.split_once("\n\n").unwrap_or((chunk, ""));
            let headers = headers_of(head);
            let get = |name: &str| {
                headers
                    .iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case(name))
                    .map(|(_, v)| v.clone())
            };
            let content_type = get("Content-Type").unwrap_or_else(|| "text/plain".to_owned());
            let encoding = get("Content-Transfer-Encoding")
                .unwrap_or_default()
                .to_ascii_lowercase();
            let bytes = match encoding.as_str() {
                "quoted-printable" => decode_quoted_printable(body),
                "base64" => decode_base64(body),
                _ => body.as_bytes().to_vec(),
            };
            parts.push(Part {
                content_type,
                text: String::from_utf8_lossy(&bytes).into_owned(),
            });
        }
        parts
    }
}

/// One MIME part.
#[derive(Debug, Clone)]
pub struct Part {
    /// The full Content-Type value, parameters included.
    pub content_type: String,
    /// The body after its transfer encoding is undone.
    pub text: String,
}

impl Part {
    /// The media type alone, lowercase: `text/plain`.
    pub fn media_type(&self) -> String {
        self.content_type
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase()
    }
}

fn headers_of(block: &str) -> Vec<(String, String)> {
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in block.lines() {
        if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = headers.last_mut() {
                value.push(' ');
                value.push_str(line.trim());
            }
        } else if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_owned(), value.trim().to_owned()));
        }
    }
    headers
        .into_iter()
        .map(|(name, value)| (name, decode_encoded_words(&value)))
        .collect()
}

/// A parameter of a header value such as `multipart/alternative;
/// boundary="x"`.
fn parameter(value: &str, name: &str) -> Option<String> {
    value.split(';').skip(1).find_map(|param| {
        let (key, val) = param.split_once('=')?;
        key.trim()
            .eq_ignore_ascii_case(name)
            .then(|| val.trim().trim_matches('"').to_owned())
    })
}

/// Decodes RFC 2047 encoded words (`=?utf-8?b?…?=`, `=?utf-8?q?…?=`).
/// Whitespace between two encoded words is dropped, as the RFC says.
fn decode_encoded_words(value: &str) -> String {
    let mut out = String::new();
    let mut rest = value;
    let mut pending_space = String::new();
    let mut last_was_word = false;
    while !rest.is_empty() {
        if let Some((decoded, after)) = encoded_word(rest) {
            if !last_was_word {
                out.push_str(&pending_space);
            }
            pending_space.clear();
            out.push_str(&decoded);
            last_was_word = true;
            rest = after;
            continue;
        }
        let c = rest.chars().next().expect("non-empty");
        if c.is_whitespace() {
            pending_space.push(c);
        } else {
            out.push_str(&pending_space);
            pending_space.clear();
            out.push(c);
            last_was_word = false;
        }
        rest = &rest[c.len_utf8()..];
    }
    out.push_str(&pending_space);
    out
}

/// One encoded word at the start of `text`: its decoded text and the rest.
fn encoded_word(text: &str) -> Option<(String, &str)> {
    let inner = text.strip_prefix("=?")?;
    let (_charset, inner) = inner.split_once('?')?;
    let (encoding, inner) = inner.split_once('?')?;
    let end = inner.find("?=")?;
    let (payload, rest) = (&inner[..end], &inner[end + 2..]);
    let bytes = match encoding {
        "b" | "B" => decode_base64(payload),
        "q" | "Q" => decode_quoted_printable(&payload.replace('_', " ")),
        _ => return None,
    };
    Some((String::from_utf8_lossy(&bytes).into_owned(), rest))
}

fn decode_quoted_printable(text: &str) -> Vec<u8> {
    let joined = text.replace("=\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'=', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    out
}

fn decode_base64(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let (mut buffer, mut bits) = (0u32, 0u32);
    for byte in text.bytes() {
        let Some(value) = ALPHABET.iter().position(|&a| a == byte) else {
            // Line breaks, and `=` padding, which carries no bits.
            continue;
        };
        buffer = (buffer << 6) | u32::try_from(value).expect("< 64");
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(u8::try_from((buffer >> bits) & 0xff).expect("one byte"));
        }
    }
    out
}

#[test]
fn encoded_words_and_transfer_encodings_decode() {
    assert_eq!(
        decode_encoded_words("covered: =?utf-8?b?4oiSV2VzdG1vcmxhbmQ=?= and Furness"),
        "covered: \u{2212}Westmorland and Furness"
    );
    assert_eq!(
        decode_encoded_words("=?utf-8?q?a_b?= =?utf-8?q?c?="),
        "a bc"
    );
    assert_eq!(
        decode_quoted_printable("=E2=88=92a=3Db=\nc"),
        "\u{2212}a=bc".as_bytes()
    );
    assert_eq!(decode_base64("aGVsbG8=\n"), b"hello");
}
