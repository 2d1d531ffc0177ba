//! A node in memory, for unit tests: a `Transport` that decodes the commands
//! written to it and answers each from a script, so the router and the bulk
//! read can be tested without a server. Only built for `cfg(test)`. A test
//! installs a `Dial` on its thread (`dial_with`, or `Nodes::dial_here`);
//! every connection that thread opens then goes to it instead of a socket.

use std::cell::RefCell;
use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use super::stream::Transport;
use super::NodeConnection;
use crate::config::NodeAddr;
use crate::error::{Error, ErrorKind, Result};

/// What a scripted node does about one command.
pub enum Answer {
    /// These bytes (one or more RESP replies).
    Reply(Vec<u8>),
    /// Closes the connection without a reply.
    Close,
    /// Never answers: a read waits for its timeout.
    Silence,
}

/// Answers one command, given as its arguments.
pub(crate) type Script = dyn FnMut(&[Vec<u8>]) -> Answer + Send;

/// Opens a connection to the node at `host:port`, or refuses it.
pub(crate) type Dial = dyn FnMut(&str) -> Result<NodeConnection>;

thread_local! {
    static DIAL: RefCell<Option<Box<Dial>>> = const { RefCell::new(None) };
}

/// From now on, connections this thread opens go through `dial`.
pub(crate) fn dial_with(dial: Box<Dial>) {
    DIAL.with(|d| *d.borrow_mut() = Some(dial));
}

/// The connection `dial_with` gives for `addr`, if this thread has a dial.
pub(crate) fn dial(addr: &NodeAddr) -> Option<Result<NodeConnection>> {
    DIAL.with(|d| d.borrow_mut().as_mut().map(|dial| dial(&addr.to_string())))
}

/// The stream of one connection to a scripted node.
pub struct ScriptedStream {
    script: Arc<Mutex<Box<Script>>>,
    /// Written bytes not yet decoded into a whole command.
    inbox: Vec<u8>,
    outbox: Vec<u8>,
    closed: bool,
    /// How long a read waits for a reply that does not come.
    timeout: Duration,
}

impl ScriptedStream {
    pub fn new(script: Arc<Mutex<Box<Script>>>) -> Self {
        ScriptedStream {
            script,
            inbox: Vec::new(),
            outbox: Vec::new(),
            closed: false,
            timeout: Duration::from_millis(100),
        }
    }
}

impl Read for ScriptedStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if !self.outbox.is_empty() {
            let n = buf.len().min(self.outbox.len());
            buf[..n].copy_from_slice(&self.outbox[..n]);
            self.outbox.drain(..n);
            return Ok(n);
        }
        if self.closed {
            return Ok(0);
        }
        // Nothing to say: as a socket with a read timeout would.
        std::thread::sleep(self.timeout);
        Err(io::ErrorKind::WouldBlock.into())
    }
}

impl Write for ScriptedStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.closed {
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        self.inbox.extend_from_slice(buf);
        while let Some((args, used)) = decode_command(&self.inbox) {
            self.inbox.drain(..used);
            let mut script = self.script.lock().unwrap_or_else(PoisonError::into_inner);
            match script(&args) {
                Answer::Reply(bytes) => self.outbox.extend_from_slice(&bytes),
                Answer::Close => self.closed = true,
                Answer::Silence => {}
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Transport for ScriptedStream {
    fn set_timeouts(&mut self, timeout: Duration) -> io::Result<()> {
        self.timeout = timeout;
        Ok(())
    }

    fn abort_on_close(&self) -> io::Result<()> {
        Ok(())
    }

    /// Joins a command's parts before writing, as TLS does, so that the
    /// router's tests take that path too.
    fn framed(&self) -> bool {
        true
    }
}

type SharedScript = Arc<Mutex<Box<Script>>>;

/// The nodes of a test: what each one answers, and what it was asked.
#[derive(Clone, Default)]
pub(crate) struct Nodes {
    scripts: Arc<Mutex<HashMap<String, SharedScript>>>,
    asked: Arc<Mutex<Vec<(String, String)>>>,
}

impl Nodes {
    /// `addr` answers with `script`, given each command as its arguments
    /// joined by spaces (lossy UTF-8); each is logged for `asked_of`.
    pub(crate) fn node(&self, addr: &str, mut script: impl FnMut(&str) -> Answer + Send + 'static) {
        let asked = self.asked.clone();
        let name = addr.to_string();
        let script: Box<Script> = Box::new(move |args: &[Vec<u8>]| {
            let words: Vec<String> = args
                .iter()
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect();
            let command = words.join(" ");
            lock(&asked).push((name.clone(), command.clone()));
            script(&command)
        });
        lock(&self.scripts).insert(addr.to_string(), Arc::new(Mutex::new(script)));
    }

    /// Refuses connections to `addr` from now on.
    pub(crate) fn down(&self, addr: &str) {
        lock(&self.scripts).remove(addr);
    }

    /// How many of the commands `addr` was sent begin with `prefix`.
    pub(crate) fn count(&self, addr: &str, prefix: &str) -> usize {
        self.asked_of(addr)
            .iter()
            .filter(|c| c.starts_with(prefix))
            .count()
    }

    /// The commands `addr` was sent, in order.
    pub(crate) fn asked_of(&self, addr: &str) -> Vec<String> {
        lock(&self.asked)
            .iter()
            .filter(|(node, _)| node == addr)
            .map(|(_, command)| command.clone())
            .collect()
    }

    /// From now on, connections this thread opens go to these nodes; one to
    /// a node without a script is refused.
    pub(crate) fn dial_here(&self) {
        let scripts = self.scripts.clone();
        dial_with(Box::new(move |addr: &str| {
            let script = lock(&scripts).get(addr).cloned();
            match script {
                Some(script) => Ok(NodeConnection::scripted(ScriptedStream::new(script))),
                None => {
                    Err(Error::new(ErrorKind::Connection, "cannot connect: refused").at_node(addr))
                }
            }
        }));
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// RESP: a bulk string.
pub(crate) fn bulk(text: &str) -> Vec<u8> {
    format!("${}\r\n{text}\r\n", text.len()).into_bytes()
}

/// RESP: an error reply.
pub(crate) fn error(text: &str) -> Vec<u8> {
    format!("-{text}\r\n").into_bytes()
}

/// RESP: an array of bulk strings.
pub(crate) fn array(items: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", items.len()).into_bytes();
    items.iter().for_each(|i| out.extend(bulk(i)));
    out
}

/// RESP: an integer.
pub(crate) fn int(n: i64) -> Vec<u8> {
    format!(":{n}\r\n").into_bytes()
}

/// RESP: the nil bulk string.
pub(crate) const NIL: &[u8] = b"$-1\r\n";

/// One whole command (`*<n>` then `n` bulk strings) at the start of `bytes`:
/// its arguments and how many bytes it took.
pub(crate) fn decode_command(bytes: &[u8]) -> Option<(Vec<Vec<u8>>, usize)> {
    let mut at = 0;
    let line = |at: &mut usize| -> Option<Vec<u8>> {
        let end = bytes[*at..].windows(2).position(|w| w == b"\r\n")? + *at;
        let text = bytes[*at..end].to_vec();
        *at = end + 2;
        Some(text)
    };
    let header = line(&mut at)?;
    let count: usize = std::str::from_utf8(header.strip_prefix(b"*")?)
        .ok()?
        .parse()
        .ok()?;
    let mut args = Vec::with_capacity(count);
    for _ in 0..count {
        let len: usize = std::str::from_utf8(line(&mut at)?.strip_prefix(b"$")?)
            .ok()?
            .parse()
            .ok()?;
        if bytes.len() < at + len + 2 {
            return None;
        }
        args.push(bytes[at..at + len].to_vec());
        at += len + 2;
    }
    Some((args, at))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_decoded_whole_or_not_at_all() {
        let mut packed = Vec::new();
        crate::resp::pack_command(&mut packed, &[b"SET", b"k\r\n", b""]);
        let (args, used) = decode_command(&packed).unwrap();
        assert_eq!(args, [b"SET".to_vec(), b"k\r\n".to_vec(), Vec::new()]);
        assert_eq!(used, packed.len());
        for cut in 0..packed.len() {
            assert!(decode_command(&packed[..cut]).is_none(), "{cut}");
        }
    }
}
