//! Raw thermal printers, without CUPS: label bytes (ZPL or TSPL, from
//! `render::thermal`) written to a network printer's raw port (`socket://host:port`,
//! JetDirect, 9100 by default) or to a USB printer's device file (`usb:///dev/usb/lp0`).
//!
//! A job counts as sent only when every byte was written and the connection ended
//! cleanly: the station writes the job, shuts its side down, and reads until the printer
//! closes its side. A printer that resets the connection (it was switched off, its
//! buffer failed, someone opened the head on some models) is seen as a reset, not as
//! a job sent. Raw printing has no job ids and no "completed" state the way CUPS has:
//! "sent" means the printer took every byte, not that the labels came out; `status`
//! (ZPL's `~HS`) is how a caller asks whether paper, head and pause are fine before and
//! after a wave.
//!
//! Everything here is synchronous std I/O with timeouts (the wave prints from plain
//! threads). A device file has no timeouts: a write to an offline USB printer blocks
//! in the kernel's driver until it comes back or is unplugged.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use crate::render::barcode::Dpi;
use crate::render::thermal::Language;

/// The raw port of JetDirect-style network printers.
pub const DEFAULT_PORT: u16 = 9100;

/// How long to wait, per step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RawTimeouts {
    /// To open the TCP connection.
    pub connect: Duration,
    /// For each write and read while a job is sent, and for the printer to close the
    /// connection after the last byte (a printer busy printing may stop reading for a
    /// while when its buffer is full, so this is generous).
    pub io: Duration,
    /// For the answer to a status query.
    pub status: Duration,
}

impl Default for RawTimeouts {
    fn default() -> RawTimeouts {
        RawTimeouts {
            connect: Duration::from_secs(5),
            io: Duration::from_secs(30),
            status: Duration::from_secs(3),
        }
    }
}

/// A thermal printer spoken to directly.
#[derive(Clone, Debug)]
pub struct RawPrinter {
    /// The name the operator knows it by (errors name it).
    pub name: String,
    /// `socket://host[:port]` or `usb:///dev/usb/lp0`.
    pub uri: String,
    pub language: Language,
    /// Its resolution: labels must be rasterized at it (203 or 300 dpi).
    pub dpi: Dpi,
    pub timeouts: RawTimeouts,
}

/// Where the bytes go, from the printer's `uri`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    Socket { host: String, port: u16 },
    Device(PathBuf),
}

/// A raw job or status query that failed; every message names the printer and says
/// what to do.
#[derive(Debug, thiserror::Error)]
pub enum RawError {
    #[error(
        "printer {printer}: {uri:?} is not a raw printer address ({why}); use socket://HOST:9100 or usb:///dev/usb/lp0"
    )]
    Uri {
        printer: String,
        uri: String,
        why: String,
    },
    #[error(
        "printer {printer} ({addr}) refused the connection: check that it is switched on and that {addr} is its address and raw port (9100 on most printers)"
    )]
    Refused { printer: String, addr: String },
    #[error(
        "printer {printer} ({addr}) reset the connection after {sent} of {total} bytes: the job did not come out whole; check the printer (paper, head, power) and print these labels again"
    )]
    Reset {
        printer: String,
        addr: String,
        sent: usize,
        total: usize,
    },
    #[error(
        "printer {printer} ({addr}): no answer within {after:?} while {doing}: check that it is on the network and not stuck (a paused printer with a full buffer stops reading)"
    )]
    Timeout {
        printer: String,
        addr: String,
        doing: &'static str,
        after: Duration,
    },
    #[error("printer {printer} ({addr}): {doing}: {source}")]
    Io {
        printer: String,
        addr: String,
        doing: &'static str,
        source: std::io::Error,
    },
    #[error("printer {printer}: its status answer is not ZPL's ~HS: {answer:?}")]
    Status { printer: String, answer: String },
}

/// What a printer says about itself. `known` is false when it was not asked (TSPL,
/// device files): the flags are then all false and mean nothing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RawStatus {
    pub known: bool,
    pub paper_out: bool,
    pub paused: bool,
    pub head_open: bool,
    pub ribbon_out: bool,
}

impl RawStatus {
    /// Not asked: the language or connection has no status query the station uses.
    pub fn unknown() -> RawStatus {
        RawStatus::default()
    }

    /// What stops the printer, for an operator, in Chinese and English; `None` when it
    /// is ready (or its state is unknown: check `known`).
    pub fn problem(&self) -> Option<String> {
        let problems: Vec<&str> = [
            (
                self.paper_out,
                "缺纸：请装入标签纸 / out of labels: load a new roll",
            ),
            (
                self.head_open,
                "打印头未合上：请合上打印头 / print head open: close it",
            ),
            (
                self.ribbon_out,
                "碳带用完：请更换碳带 / out of ribbon: load a new ribbon",
            ),
            (
                self.paused,
                "打印机已暂停：按暂停键继续 / paused: press PAUSE to resume",
            ),
        ]
        .into_iter()
        .filter(|(on, _)| *on)
        .map(|(_, words)| words)
        .collect();
        (!problems.is_empty()).then(|| problems.join("; "))
    }
}

/// Chunks written at a time, so that a reset can say how far the job got.
const CHUNK: usize = 16 * 1024;

impl RawPrinter {
    /// A printer with the default timeouts.
    pub fn new(name: &str, uri: &str, language: Language, dpi: Dpi) -> RawPrinter {
        RawPrinter {
            name: name.to_string(),
            uri: uri.to_string(),
            language,
            dpi,
            timeouts: RawTimeouts::default(),
        }
    }

    /// Where `uri` points.
    pub fn target(&self) -> Result<Target, RawError> {
        let bad = |why: &str| RawError::Uri {
            printer: self.name.clone(),
            uri: self.uri.clone(),
            why: why.to_string(),
        };
        if let Some(rest) = self.uri.strip_prefix("socket://") {
            let rest = rest.trim_end_matches('/');
            if rest.is_empty() {
                return Err(bad("no host"));
            }
            // `host`, `host:port`, `[v6]` or `[v6]:port`.
            let (host, port) = match rest.rsplit_once(':') {
                Some((h, p)) if !p.contains(']') && (!h.contains(':') || h.ends_with(']')) => {
                    let port = p
                        .parse::<u16>()
                        .map_err(|_| bad("the port is not a number"))?;
                    (h, port)
                }
                _ => (rest, DEFAULT_PORT),
            };
            let host = host.trim_start_matches('[').trim_end_matches(']');
            return Ok(Target::Socket {
                host: host.to_string(),
                port,
            });
        }
        if let Some(path) = self.uri.strip_prefix("usb://") {
            if !path.starts_with('/') {
                return Err(bad("the device path must be absolute"));
            }
            return Ok(Target::Device(PathBuf::from(path)));
        }
        Err(bad("unknown scheme"))
    }

    /// Sends one job (any number of labels). `Ok` only when every byte was written and
    /// the printer closed the connection cleanly (or the device file took every byte).
    pub fn send(&self, bytes: &[u8]) -> Result<(), RawError> {
        match self.target()? {
            Target::Socket { host, port } => self.send_socket(&host, port, bytes),
            Target::Device(path) => self.send_device(&path, bytes),
        }
    }

    /// What the printer says about paper, head and pause. ZPL over a socket asks `~HS`;
    /// TSPL and device files answer `RawStatus::unknown()` (TSPL's `<ESC>!?` status byte
    /// differs between TSC firmware and the clones, so the station does not rely on it).
    pub fn status(&self) -> Result<RawStatus, RawError> {
        let (host, port) = match (self.language, self.target()?) {
            (Language::Zpl, Target::Socket { host, port }) => (host, port),
            _ => return Ok(RawStatus::unknown()),
        };
        let (mut stream, addr) = self.connect(&host, port)?;
        let after = self.timeouts.status;
        let timeout = |doing| RawError::Timeout {
            printer: self.name.clone(),
            addr: addr.clone(),
            doing,
            after,
        };
        let io = |doing, source| self.io_error(&addr, doing, source);
        set_timeouts(&stream, self.timeouts.status).map_err(|e| io("setting timeouts", e))?;
        stream
            .write_all(b"~HS")
            .and_then(|()| stream.flush())
            .map_err(|e| io("asking for its status", e))?;
        // Three strings, each <STX>…<ETX><CR><LF>.
        let mut answer = Vec::new();
        let mut buf = [0u8; 512];
        while answer.iter().filter(|&&b| b == 0x03).count() < 3 {
            match stream.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => answer.extend_from_slice(&buf[..n]),
                // Zebra documents that a printer out of media or with its head open
                // does not answer ~HS at all: say so, since that is the likely cause.
                Err(e) if is_timeout(&e) => {
                    return Err(timeout(
                        "waiting for its ~HS status (Zebra printers do not answer when out of paper or with the head open)",
                    ));
                }
                Err(e) => return Err(io("reading its status", e)),
            }
        }
        let _ = stream.shutdown(Shutdown::Both);
        parse_host_status(&answer).ok_or_else(|| RawError::Status {
            printer: self.name.clone(),
            answer: String::from_utf8_lossy(&answer).into_owned(),
        })
    }

    fn io_error(&self, addr: &str, doing: &'static str, source: std::io::Error) -> RawError {
        RawError::Io {
            printer: self.name.clone(),
            addr: addr.to_string(),
            doing,
            source,
        }
    }

    /// The first address of `host:port` that accepts a connection.
    fn connect(&self, host: &str, port: u16) -> Result<(TcpStream, String), RawError> {
        let addr = format!("{host}:{port}");
        let addrs: Vec<SocketAddr> = (host, port)
            .to_socket_addrs()
            .map_err(|e| self.io_error(&addr, "looking up its address", e))?
            .collect();
        let mut last = None;
        for a in &addrs {
            match TcpStream::connect_timeout(a, self.timeouts.connect) {
                Ok(s) => return Ok((s, addr)),
                Err(e) => last = Some(e),
            }
        }
        Err(match last {
            Some(e) if e.kind() == ErrorKind::ConnectionRefused => RawError::Refused {
                printer: self.name.clone(),
                addr,
            },
            Some(e) if is_timeout(&e) => RawError::Timeout {
                printer: self.name.clone(),
                addr,
                doing: "connecting",
                after: self.timeouts.connect,
            },
            Some(e) => self.io_error(&addr, "connecting", e),
            None => self.io_error(
                &addr,
                "looking up its address",
                std::io::Error::new(ErrorKind::NotFound, "no address"),
            ),
        })
    }

    fn send_socket(&self, host: &str, port: u16, bytes: &[u8]) -> Result<(), RawError> {
        let (mut stream, addr) = self.connect(host, port)?;
        let total = bytes.len();
        let after = self.timeouts.io;
        let fail = |doing: &'static str, sent: usize, e: std::io::Error| {
            if is_reset(&e) {
                RawError::Reset {
                    printer: self.name.clone(),
                    addr: addr.clone(),
                    sent,
                    total,
                }
            } else if is_timeout(&e) {
                RawError::Timeout {
                    printer: self.name.clone(),
                    addr: addr.clone(),
                    doing,
                    after,
                }
            } else {
                self.io_error(&addr, doing, e)
            }
        };
        set_timeouts(&stream, self.timeouts.io).map_err(|e| fail("setting timeouts", 0, e))?;
        let mut sent = 0;
        for chunk in bytes.chunks(CHUNK) {
            stream
                .write_all(chunk)
                .map_err(|e| fail("sending the labels", sent, e))?;
            sent += chunk.len();
        }
        stream
            .flush()
            .map_err(|e| fail("sending the labels", sent, e))?;
        // Our side is done. The printer closes its side once it has read everything; a
        // reset instead means it dropped the job. Anything it says meanwhile is ignored.
        stream
            .shutdown(Shutdown::Write)
            .map_err(|e| fail("ending the job", sent, e))?;
        let mut buf = [0u8; 512];
        loop {
            match stream.read(&mut buf) {
                Ok(0) => return Ok(()),
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(fail("waiting for it to take the whole job", sent, e)),
            }
        }
    }

    fn send_device(&self, path: &std::path::Path, bytes: &[u8]) -> Result<(), RawError> {
        let addr = path.display().to_string();
        let fail = |doing: &'static str, e: std::io::Error| {
            let doing = match e.kind() {
                ErrorKind::NotFound => {
                    "opening the device (not found: is the printer plugged in and switched on?)"
                }
                ErrorKind::PermissionDenied => {
                    "opening the device (permission denied: add the station's user to group lp)"
                }
                _ => doing,
            };
            self.io_error(&addr, doing, e)
        };
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .open(path)
            .map_err(|e| fail("opening the device", e))?;
        file.write_all(bytes)
            .and_then(|()| file.flush())
            .map_err(|e| fail("writing the labels", e))
    }
}

fn set_timeouts(stream: &TcpStream, t: Duration) -> std::io::Result<()> {
    stream.set_read_timeout(Some(t))?;
    stream.set_write_timeout(Some(t))?;
    stream.set_nodelay(true)
}

fn is_timeout(e: &std::io::Error) -> bool {
    matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
}

fn is_reset(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted | ErrorKind::BrokenPipe
    )
}

/// Reads ZPL's `~HS` answer: three `<STX>…<ETX>` strings of comma-separated fields.
/// String 1: field 2 paper out, field 3 pause; string 2: field 3 head up (open), field 4
/// ribbon out (ZPL II Programming Guide, `~HS`). `None` when it is not that shape.
pub fn parse_host_status(answer: &[u8]) -> Option<RawStatus> {
    let text = std::str::from_utf8(answer).ok()?;
    let strings: Vec<Vec<&str>> = text
        .split('\u{2}')
        .filter_map(|s| s.split_once('\u{3}').map(|(inner, _)| inner))
        .map(|s| s.split(',').map(str::trim).collect())
        .collect();
    if strings.len() < 2 || strings[0].len() < 3 || strings[1].len() < 4 {
        return None;
    }
    let flag = |s: &str| match s {
        "0" => Some(false),
        "1" => Some(true),
        _ => None,
    };
    Some(RawStatus {
        known: true,
        paper_out: flag(strings[0][1])?,
        paused: flag(strings[0][2])?,
        head_open: flag(strings[1][2])?,
        ribbon_out: flag(strings[1][3])?,
    })
}

/// A `~HS` answer with these flags and ordinary values elsewhere (for tests and the
/// simulator): what a ZT410 says, give or take the settings fields.
pub fn host_status_answer(paper_out: bool, paused: bool, head_open: bool) -> Vec<u8> {
    let b = |f: bool| if f { '1' } else { '0' };
    format!(
        "\u{2}030,{},{},1181,000,0,0,0,000,0,0,0\u{3}\r\n\u{2}001,0,{},0,0,2,6,0,00000000,1,000\u{3}\r\n\u{2}1234,0\u{3}\r\n",
        b(paper_out),
        b(paused),
        b(head_open)
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn printer(uri: &str) -> RawPrinter {
        RawPrinter::new("ZT-1", uri, Language::Zpl, Dpi(203))
    }

    #[test]
    fn uris_name_a_socket_or_a_device() {
        let t = |uri: &str| printer(uri).target();
        assert_eq!(
            t("socket://10.0.0.7:9101").unwrap(),
            Target::Socket {
                host: "10.0.0.7".into(),
                port: 9101
            }
        );
        assert_eq!(
            t("socket://zebra-3").unwrap(),
            Target::Socket {
                host: "zebra-3".into(),
                port: 9100
            }
        );
        assert_eq!(
            t("socket://[::1]:9100").unwrap(),
            Target::Socket {
                host: "::1".into(),
                port: 9100
            }
        );
        assert_eq!(
            t("usb:///dev/usb/lp0").unwrap(),
            Target::Device("/dev/usb/lp0".into())
        );
        for bad in [
            "ipp://x/printers/a",
            "socket://",
            "socket://h:port",
            "usb://lp0",
        ] {
            let err = t(bad).unwrap_err().to_string();
            assert!(
                err.contains("ZT-1") && err.contains("socket://HOST:9100"),
                "{err}"
            );
        }
    }

    #[test]
    fn host_status_flags_are_read_from_their_fields() {
        assert_eq!(
            parse_host_status(&host_status_answer(false, false, false)),
            Some(RawStatus {
                known: true,
                ..RawStatus::default()
            })
        );
        let s = parse_host_status(&host_status_answer(true, true, true)).unwrap();
        assert!(s.paper_out && s.paused && s.head_open && !s.ribbon_out);
        let words = s.problem().unwrap();
        assert!(
            words.contains("缺纸") && words.contains("out of labels"),
            "{words}"
        );
        assert!(
            words.contains("打印头") && words.contains("paused"),
            "{words}"
        );
        assert_eq!(parse_host_status(b"garbage"), None);
        assert_eq!(RawStatus::unknown().problem(), None);
    }

    #[test]
    fn a_device_file_takes_the_job() {
        let dir = tempfile::tempdir().unwrap();
        let dev = dir.path().join("lp0");
        std::fs::write(&dev, b"").unwrap();
        let p = printer(&format!("usb://{}", dev.display()));
        p.send(b"^XA^XZ").unwrap();
        assert_eq!(std::fs::read(&dev).unwrap(), b"^XA^XZ");
        let gone = printer(&format!("usb://{}", dir.path().join("lp9").display()));
        let err = gone.send(b"^XA^XZ").unwrap_err().to_string();
        assert!(err.contains("plugged in"), "{err}");
    }
}
