//! Thermal printer languages: one label's bitmap (`raster::Bitmap`) as the bytes a ZPL
//! (Zebra and its clones) or TSPL (TSC, Xprinter, Gprinter…) printer prints, and those
//! bytes read back into bitmaps, which the tests and `station perf` use to prove that
//! what goes on the wire is the label.
//!
//! The whole label is sent as one graphic: the station lays out and rasterizes text
//! itself, with its own CJK fonts, instead of relying on fonts the printer may not have.
//!
//! * ZPL: `^XA^PW{w}^LL{h}^FO0,0^GFA,{total},{total},{bytes_per_row},{data}^FS^PQ1^XZ`.
//!   The data is ASCII hex (two characters per byte: a 100×150 mm label at 203 dpi is
//!   ≈ 236 KB) or Z64 (`:Z64:` + base64 of the zlib-compressed bytes + `:` + a CRC,
//!   see [`crc16`]), typically a few KB for a waybill because labels are mostly white.
//!   ZPL's bit 1 is a black dot, as in `Bitmap`.
//! * TSPL: `SIZE`, `GAP`, `CLS`, `BITMAP 0,0,{width_bytes},{height},0,<raw bytes>`,
//!   `PRINT 1,1`. In TSPL's `BITMAP` a **0 bit prints black** and a 1 bit leaves the dot
//!   white (TSC's TSPL/TSPL2 programming manual, BITMAP: the opposite of ZPL and of
//!   ESC/POS), so the encoder inverts `Bitmap`'s bits and pads each row with white (1)
//!   bits. Some third-party notes online claim the opposite; the first label on a real
//!   TSPL printer settles it (a negative label means this is wrong for that firmware).
//!   Mode 0 is OVERWRITE. Raw binary is safe there because the printer counts
//!   `width_bytes × height` bytes instead of looking for a delimiter.

use std::io::{Read, Write};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use flate2::Compression;
use flate2::read::ZlibDecoder;
use flate2::write::ZlibEncoder;
use serde::{Deserialize, Serialize};

use super::barcode::Dpi;
use super::raster::Bitmap;

/// The language a raw thermal printer speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    /// Zebra Programming Language (ZPL II).
    Zpl,
    /// TSC Printer Language (TSPL/TSPL2).
    Tspl,
}

impl Language {
    /// `zpl` or `tspl`, as in the configuration and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Language::Zpl => "zpl",
            Language::Tspl => "tspl",
        }
    }
}

impl std::fmt::Display for Language {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Language {
    type Err = String;

    fn from_str(s: &str) -> Result<Language, String> {
        match s.to_ascii_lowercase().as_str() {
            "zpl" => Ok(Language::Zpl),
            "tspl" => Ok(Language::Tspl),
            _ => Err(format!(
                "unknown printer language {s:?}: use zpl (Zebra) or tspl (TSC and most Chinese label printers)"
            )),
        }
    }
}

/// How ZPL's `^GF` carries the bitmap.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ZplData {
    /// ASCII hex: every printer understands it, twice the bitmap's size on the wire.
    Hex,
    /// Zlib + base64 + CRC (`:Z64:`), understood by Zebra firmware since the mid-2000s
    /// (and its clones): far fewer bytes for a mostly white label.
    #[default]
    Z64,
}

/// Bytes that are not a label this module wrote (or that were damaged on the way).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct DecodeError(pub String);

fn bad(msg: impl Into<String>) -> DecodeError {
    DecodeError(msg.into())
}

/// One label in `language` (`zpl` data as given; TSPL needs `dpi` for the label size).
pub fn encode(bm: &Bitmap, language: Language, dpi: Dpi, zpl_data: ZplData) -> Vec<u8> {
    match language {
        Language::Zpl => zpl(bm, zpl_data),
        Language::Tspl => tspl(bm, dpi),
    }
}

/// Every label in `bytes` (one job may hold several), read back.
pub fn decode(bytes: &[u8], language: Language) -> Result<Vec<Bitmap>, DecodeError> {
    match language {
        Language::Zpl => decode_zpl(bytes),
        Language::Tspl => decode_tspl(bytes),
    }
}

/// One ZPL label: the bitmap as a graphic field at the top-left corner, one copy.
pub fn zpl(bm: &Bitmap, data: ZplData) -> Vec<u8> {
    let total = bm.data.len();
    let field = match data {
        ZplData::Hex => hex(&bm.data),
        ZplData::Z64 => z64(&bm.data),
    };
    format!(
        "^XA^PW{}^LL{}^FO0,0^GFA,{total},{total},{},{field}^FS^PQ1^XZ\n",
        bm.width_dots, bm.height_dots, bm.bytes_per_row
    )
    .into_bytes()
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
}

/// `:Z64:<base64 of zlib>:<crc>`.
fn z64(bytes: &[u8]) -> String {
    let mut enc = ZlibEncoder::new(Vec::new(), Compression::default());
    // Writing into a Vec cannot fail.
    enc.write_all(bytes).expect("deflate into memory");
    let b64 = BASE64.encode(enc.finish().expect("deflate into memory"));
    format!(":Z64:{b64}:{:04X}", crc16(b64.as_bytes()))
}

/// The CRC of Zebra's B64/Z64 encodings: CRC-16/CCITT as XMODEM computes it
/// (polynomial 0x1021, initial value 0, no reflection, no final xor), over the base64
/// text. The ZPL manual only says "CRC"; this is what Zebra's own SDKs and the
/// printers accept (check value: `crc16(b"123456789") == 0x31C3`).
pub fn crc16(bytes: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &b in bytes {
        crc ^= u16::from(b) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// Every `^GFA` label in ZPL `bytes`, with the width from the label's `^PW`.
pub fn decode_zpl(bytes: &[u8]) -> Result<Vec<Bitmap>, DecodeError> {
    let text = std::str::from_utf8(bytes).map_err(|_| bad("ZPL is not ASCII text"))?;
    let mut out = Vec::new();
    for format in text.split("^XA").skip(1) {
        let Some(at) = format.find("^GFA,") else {
            continue;
        };
        let width = format
            .find("^PW")
            .and_then(|i| leading_number(&format[i + 3..]));
        let rest = &format[at + 5..];
        let mut parts = rest.splitn(4, ',');
        let mut num = |what: &str| {
            parts
                .next()
                .and_then(|p| p.trim().parse::<usize>().ok())
                .ok_or_else(|| bad(format!("^GFA: no {what}")))
        };
        let total = num("byte count")?;
        let _field = num("field count")?;
        let bpr = num("bytes per row")?;
        if bpr == 0 || total % bpr != 0 {
            return Err(bad(format!(
                "^GFA: {total} bytes are not rows of {bpr} bytes"
            )));
        }
        let field = parts.next().ok_or_else(|| bad("^GFA: no data"))?;
        let field = &field[..field.find('^').unwrap_or(field.len())];
        let data = if let Some(z) = field.strip_prefix(":Z64:") {
            unz64(z)?
        } else {
            unhex(field)?
        };
        if data.len() != total {
            return Err(bad(format!(
                "^GFA: {} bytes of data, the header says {total}",
                data.len()
            )));
        }
        let width_dots = width.unwrap_or(bpr * 8).min(bpr * 8) as u32;
        out.push(Bitmap {
            width_dots,
            height_dots: (total / bpr) as u32,
            bytes_per_row: bpr as u32,
            data,
        });
    }
    Ok(out)
}

fn leading_number(s: &str) -> Option<usize> {
    let end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    s[..end].parse().ok()
}

fn unhex(field: &str) -> Result<Vec<u8>, DecodeError> {
    let digits: Vec<u8> = field.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    if !digits.len().is_multiple_of(2) {
        return Err(bad("^GFA: an odd number of hex digits"));
    }
    digits
        .chunks(2)
        .map(|pair| {
            let s = std::str::from_utf8(pair).unwrap_or("");
            u8::from_str_radix(s, 16).map_err(|_| {
                bad(format!(
                    "^GFA: {s:?} is not hex (ZPL's run-length letters are not read here)"
                ))
            })
        })
        .collect()
}

/// `<base64>:<crc>` of a Z64 field, CRC checked, inflated.
fn unz64(z: &str) -> Result<Vec<u8>, DecodeError> {
    let (b64, crc) = z
        .rsplit_once(':')
        .ok_or_else(|| bad("Z64: no CRC after the data"))?;
    let b64 = b64.trim();
    let crc = u16::from_str_radix(crc.trim(), 16)
        .map_err(|_| bad(format!("Z64: CRC {crc:?} is not 4 hex digits")))?;
    let want = crc16(b64.as_bytes());
    if crc != want {
        return Err(bad(format!(
            "Z64: CRC {crc:04X} does not match the data ({want:04X}): damaged on the way"
        )));
    }
    let zlib = BASE64
        .decode(b64)
        .map_err(|e| bad(format!("Z64: base64: {e}")))?;
    let mut data = Vec::new();
    ZlibDecoder::new(&zlib[..])
        .read_to_end(&mut data)
        .map_err(|e| bad(format!("Z64: zlib: {e}")))?;
    Ok(data)
}

/// Millimetres for TSPL's `SIZE`, to 0.1 mm, without a trailing `.0`.
fn mm(dots: u32, dpi: Dpi) -> String {
    let tenths = (f64::from(dots) * 254.0 / f64::from(dpi.0)).round() as u64;
    if tenths.is_multiple_of(10) {
        format!("{}", tenths / 10)
    } else {
        format!("{}.{}", tenths / 10, tenths % 10)
    }
}

/// One TSPL label: size, a 2 mm gap between labels, the bitmap (bits inverted: TSPL
/// prints 0 bits), one copy.
pub fn tspl(bm: &Bitmap, dpi: Dpi) -> Vec<u8> {
    let mut out = format!(
        "SIZE {} mm,{} mm\r\nGAP 2 mm,0 mm\r\nCLS\r\nBITMAP 0,0,{},{},0,",
        mm(bm.width_dots, dpi),
        mm(bm.height_dots, dpi),
        bm.bytes_per_row,
        bm.height_dots
    )
    .into_bytes();
    // The padding bits past the width are white (1 in TSPL) like the rest of the margin.
    let pad = bm.bytes_per_row * 8 - bm.width_dots;
    let pad_mask = if pad == 0 { 0 } else { 0xffu8 >> (8 - pad) };
    for row in bm.data.chunks(bm.bytes_per_row as usize) {
        let start = out.len();
        out.extend(row.iter().map(|b| !b));
        if let Some(last) = out[start..].last_mut() {
            *last |= pad_mask;
        }
    }
    out.extend_from_slice(b"\r\nPRINT 1,1\r\n");
    out
}

/// Every `BITMAP` label in TSPL `bytes`, bits turned back (1 = black). TSPL gives the
/// width in bytes only, so the width read back is `width_bytes × 8` dots (the padding is
/// white).
pub fn decode_tspl(bytes: &[u8]) -> Result<Vec<Bitmap>, DecodeError> {
    let mut out = Vec::new();
    let mut rest = bytes;
    while let Some(at) = find(rest, b"BITMAP ") {
        rest = &rest[at + 7..];
        // Five numbers: x, y, width in bytes, height, mode; the data follows the fifth comma.
        let mut nums = [0usize; 5];
        for n in &mut nums {
            let end = rest
                .iter()
                .position(|&b| b == b',')
                .ok_or_else(|| bad("BITMAP: fewer than five numbers"))?;
            let s = std::str::from_utf8(&rest[..end]).unwrap_or("");
            *n = s
                .trim()
                .parse()
                .map_err(|_| bad(format!("BITMAP: {s:?} is not a number")))?;
            rest = &rest[end + 1..];
        }
        let [x, y, width_bytes, height, mode] = nums;
        if (x, y, mode) != (0, 0, 0) {
            return Err(bad(format!(
                "BITMAP at {x},{y} mode {mode}: only whole labels (0,0, mode 0) are read"
            )));
        }
        let len = width_bytes * height;
        if rest.len() < len {
            return Err(bad(format!(
                "BITMAP: {} bytes of data, {width_bytes}×{height} announced",
                rest.len()
            )));
        }
        let data: Vec<u8> = rest[..len].iter().map(|b| !b).collect();
        rest = &rest[len..];
        out.push(Bitmap {
            width_dots: (width_bytes * 8) as u32,
            height_dots: height as u32,
            bytes_per_row: width_bytes as u32,
            data,
        });
    }
    Ok(out)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// What one label costs on the wire in each ZPL data form, for `station perf`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct ZplSizes {
    /// Bytes of the whole label (`^XA` … `^XZ`) with hex data.
    pub hex: usize,
    /// The same with Z64 data.
    pub z64: usize,
}

/// The bytes of `bm` as one ZPL label, hex and Z64.
pub fn zpl_sizes(bm: &Bitmap) -> ZplSizes {
    ZplSizes {
        hex: zpl(bm, ZplData::Hex).len(),
        z64: zpl(bm, ZplData::Z64).len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small bitmap with a width that is not a whole number of bytes and a pattern
    /// that tells rows, columns and bit order apart.
    fn sample() -> Bitmap {
        let mut bm = Bitmap::new(21, 7);
        for y in 0..7i64 {
            for x in 0..21i64 {
                bm.set(x, y, (x * 3 + y * 5) % 7 < 3 || x == 0);
            }
        }
        bm
    }

    #[test]
    fn crc16_is_ccitt_xmodem() {
        assert_eq!(crc16(b"123456789"), 0x31C3);
        assert_eq!(crc16(b""), 0);
        assert_eq!(crc16(b"A"), 0x58E5);
    }

    #[test]
    fn zpl_hex_has_the_documented_shape_and_round_trips() {
        let bm = sample();
        let bytes = zpl(&bm, ZplData::Hex);
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(
            text.starts_with("^XA^PW21^LL7^FO0,0^GFA,21,21,3,"),
            "{text}"
        );
        assert!(text.ends_with("^FS^PQ1^XZ\n"), "{text}");
        // The first row starts with a black dot in the leftmost (most significant) bit.
        assert!(text[31..].starts_with(&format!("{:02X}", bm.data[0])));
        assert!(bm.data[0] & 0x80 != 0);
        assert_eq!(decode_zpl(&bytes).unwrap(), vec![bm]);
    }

    #[test]
    fn zpl_z64_round_trips_and_its_crc_is_checked() {
        let bm = sample();
        let bytes = zpl(&bm, ZplData::Z64);
        let text = String::from_utf8(bytes.clone()).unwrap();
        let field = text.split(":Z64:").nth(1).unwrap();
        let (b64, crc) = field.split_once("^FS").unwrap().0.rsplit_once(':').unwrap();
        assert_eq!(crc, format!("{:04X}", crc16(b64.as_bytes())));
        assert_eq!(decode_zpl(&bytes).unwrap(), vec![bm.clone()]);
        // Two labels in one job come back as two.
        let two = [bytes.clone(), bytes.clone()].concat();
        assert_eq!(decode_zpl(&two).unwrap().len(), 2);
        // One changed character of the base64 is caught by the CRC.
        let broken = text.replacen(&b64[..4], "AAAA", 1);
        let err = decode_zpl(broken.as_bytes()).unwrap_err();
        assert!(err.0.contains("CRC"), "{err}");
    }

    #[test]
    fn tspl_inverts_the_bits_and_round_trips() {
        let bm = sample();
        let bytes = tspl(&bm, Dpi(203));
        let head = b"SIZE 2.6 mm,0.9 mm\r\nGAP 2 mm,0 mm\r\nCLS\r\nBITMAP 0,0,3,7,0,";
        assert!(
            bytes.starts_with(head),
            "{}",
            String::from_utf8_lossy(&bytes)
        );
        assert!(bytes.ends_with(b"\r\nPRINT 1,1\r\n"));
        let data = &bytes[head.len()..head.len() + 21];
        // A black dot is a 0 bit; the 3 padding bits of each row are white (1).
        assert_eq!(data[0] & 0x80, 0);
        assert_eq!(data[2] & 0b111, 0b111);
        assert_eq!(data[0], !bm.data[0]);
        let back = decode_tspl(&bytes).unwrap();
        assert_eq!(back.len(), 1);
        let back = &back[0];
        assert_eq!((back.width_dots, back.height_dots), (24, 7));
        for y in 0..7 {
            for x in 0..24 {
                assert_eq!(back.get(x, y), bm.get(x, y), "dot {x},{y}");
            }
        }
    }

    #[test]
    fn tspl_size_is_the_label_in_mm() {
        let bm = Bitmap::new(799, 1181);
        let text = String::from_utf8_lossy(&tspl(&bm, Dpi(203))[..40]).into_owned();
        assert!(text.starts_with("SIZE 100 mm,147.8 mm\r\n"), "{text}");
        let bm = Bitmap::new(1181, 1772);
        let text = String::from_utf8_lossy(&tspl(&bm, Dpi(300))[..40]).into_owned();
        assert!(text.starts_with("SIZE 100 mm,150 mm\r\n"), "{text}");
    }

    #[test]
    fn languages_parse_by_name() {
        assert_eq!("ZPL".parse::<Language>(), Ok(Language::Zpl));
        assert_eq!("tspl".parse::<Language>(), Ok(Language::Tspl));
        assert!("escpos".parse::<Language>().unwrap_err().contains("zpl"));
    }

    #[test]
    fn z64_is_smaller_than_hex_for_a_mostly_white_label() {
        let mut bm = Bitmap::new(799, 1181);
        for x in 100..300 {
            bm.set(x, 500, true);
        }
        let sizes = zpl_sizes(&bm);
        assert!(sizes.hex > 2 * bm.data.len());
        assert!(sizes.z64 * 20 < sizes.hex, "{sizes:?}");
    }
}
