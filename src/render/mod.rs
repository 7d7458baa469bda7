//! Turning orders into printable documents (waybills, packing slips, manifests).
//!
//! Groundwork for the documents issue: fonts with a per-character fallback chain
//! and text measuring (`fonts`), and barcodes drawn as vector shapes snapped to
//! printer dots (`barcode`), templates laid out into pages (`layout`), privacy
//! masking (`mask`) and the PDF bytes written out (`pdf`). Architecture
//! invariant: render never touches SQLite.

pub mod barcode;
pub mod fonts;
pub mod layout;
pub mod mask;
pub mod pdf;
