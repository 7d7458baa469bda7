//! Declarative document layouts: the template format, loading it with errors that point at
//! the file, line and field, and rendering documents through it into one PDF.
//!
//! This module owns the layout format read from `templates/*.toml` (documented in
//! `templates/README.md`), the template context (`context`, in `layout/context.rs`) and the
//! page composition: text boxes fitted with `fonts::wrap` (wrap, shrink to a minimum size,
//! then warn — never cut), lines and boxes, Code128 and QR codes from `render::barcode`, and
//! an item table that continues on further pages. It does not allocate tracking numbers,
//! choose couriers or write files: the print wave does that and hands it `DocInput`s.
//!
//! Text in templates is minijinja. Templates are compiled once when loaded and checked
//! against the context's field names, so a typo such as `recipient.nmae` is an error at
//! load time instead of a silently empty box on ten thousand labels.

pub mod context;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ops::Range;
use std::path::Path;

use minijinja::{Environment, Value};
use printpdf::{
    Color, FontId, Greyscale, Line, LinePoint, Mm, Op, PaintMode, PdfDocument, PdfFontHandle,
    PdfPage, Point, Pt, TextItem, TextMatrix, TextRenderingMode,
};
use serde::Deserialize;
use toml::Spanned;

use super::barcode::{self, BarcodeError, Dpi};
use super::fonts::{self, FaceId, FontChain, LINE_HEIGHT, MM_PER_PT};
use super::raster::{self, Bitmap};

pub use context::{
    BuyerContext, DocContext, DocInput, ItemContext, ManifestContext, ManifestRow, MemoContext,
    RecipientContext, SenderContext, context, manifest_context,
};

/// A template that failed to load, pointing at the place to fix.
#[derive(Debug, thiserror::Error)]
#[error("{file}:{line}: {field}: {message}")]
pub struct TemplateError {
    /// The template file as given to `Template::load`.
    pub file: String,
    /// 1-based line in the file; 0 when the file could not be read at all.
    pub line: usize,
    /// The field at fault, e.g. `element[3].text` or `page.width_mm`.
    pub field: String,
    pub message: String,
}

/// A document that could not be rendered. Layout problems that only concern one order's
/// data (overflowing text, missing glyphs, an empty barcode) are warnings instead.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("order {order}: template {template}, {field}: {source}")]
    Template {
        order: String,
        template: String,
        field: String,
        source: minijinja::Error,
    },
    #[error("order {order}: template {template}, {field}: {source}")]
    Barcode {
        order: String,
        template: String,
        field: String,
        source: BarcodeError,
    },
}

/// One PDF holding every page of the documents rendered together.
#[derive(Debug)]
pub struct Rendered {
    /// The file's bytes: the PDF (`wave` also carries ZPL/TSPL labels in it,
    /// from `render_raster` and `thermal::encode`).
    pub pdf: Vec<u8>,
    pub pages: usize,
    /// Pages per input document, in input order.
    pub per_doc_pages: Vec<usize>,
    /// (order id, message): characters in no font, text that overflowed its box even at
    /// its minimum size, barcodes with no data. The wave lists these orders for attention.
    pub warnings: Vec<(String, String)>,
}

/// Which context a template is written against; it decides the variables it may use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ContextKind {
    /// One order: waybills and packing slips (`DocContext`).
    #[default]
    Order,
    /// A handover manifest: one courier's parcels (`ManifestContext`).
    Manifest,
    /// A wave's pick list and slot table (`PicklistContext`).
    Picklist,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Kind {
    Text,
    Line,
    Rect,
    Qr,
    Code128,
    Items,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Align {
    #[default]
    Left,
    Center,
    Right,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VAlign {
    #[default]
    Top,
    Middle,
    Bottom,
}

/// On which pages of a document an element is drawn, when the item table makes it longer
/// than one page.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Pages {
    #[default]
    First,
    All,
    Last,
    /// Every page but the first (a continuation header).
    Rest,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTemplate {
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    context: ContextKind,
    page: RawPage,
    #[serde(default, rename = "element")]
    elements: Vec<Spanned<RawElement>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPage {
    width_mm: f32,
    height_mm: f32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawElement {
    kind: Kind,
    name: Option<String>,
    #[serde(default)]
    x_mm: f32,
    #[serde(default)]
    y_mm: f32,
    w_mm: Option<f32>,
    h_mm: Option<f32>,
    x2_mm: Option<f32>,
    y2_mm: Option<f32>,
    text: Option<Spanned<String>>,
    /// Text elements: drawn instead of `text` when `text` does not fit its box
    /// even at `min_pt` (the address without the buyer's instructions).
    fallback: Option<Spanned<String>>,
    data: Option<Spanned<String>>,
    when: Option<Spanned<String>>,
    #[serde(default)]
    pages: Pages,
    size_pt: Option<f32>,
    min_pt: Option<f32>,
    max_lines: Option<usize>,
    #[serde(default)]
    bold: bool,
    #[serde(default)]
    invert: bool,
    #[serde(default)]
    align: Align,
    #[serde(default)]
    valign: VAlign,
    thickness_pt: Option<f32>,
    #[serde(default)]
    fill: bool,
    #[serde(default)]
    hri: bool,
    hri_pt: Option<f32>,
    rows: Option<String>,
    columns: Option<Vec<Spanned<RawColumn>>>,
    row_max_lines: Option<usize>,
    padding_mm: Option<f32>,
    continue_y_mm: Option<f32>,
    continue_h_mm: Option<f32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawColumn {
    label: String,
    text: Spanned<String>,
    w_mm: Option<f32>,
    #[serde(default)]
    align: Align,
    when: Option<Spanned<String>>,
    /// Lines this column's cells may take before shrinking; the table's `row_max_lines`
    /// when absent. One line keeps codes such as SKUs whole (they shrink instead).
    max_lines: Option<usize>,
    /// Draw each cell's text as a Code128 symbol with bars this tall (mm), its
    /// characters printed small under it; a code that does not fit the cell's
    /// width with modules of at least two printer dots is printed as text.
    bars_mm: Option<f32>,
}

/// A loaded, compiled template.
pub struct Template {
    name: String,
    description: Option<String>,
    file: String,
    page_w: f32,
    page_h: f32,
    dpi: Dpi,
    context: ContextKind,
    elements: Vec<Element>,
    env: Environment<'static>,
}

impl std::fmt::Debug for Template {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Template")
            .field("name", &self.name)
            .field("file", &self.file)
            .field("page_mm", &(self.page_w, self.page_h))
            .field("elements", &self.elements.len())
            .finish()
    }
}

struct Element {
    /// The name used in warnings: the element's `name`, else "element[N]".
    label: String,
    kind: Kind,
    x: f32,
    y: f32,
    w: f32,
    h: f32,
    x2: f32,
    y2: f32,
    /// Compiled template names in `env`.
    text: Option<String>,
    fallback: Option<String>,
    when: Option<String>,
    pages: Pages,
    size_pt: f32,
    min_pt: f32,
    max_lines: Option<usize>,
    bold: bool,
    invert: bool,
    align: Align,
    valign: VAlign,
    thickness_pt: f32,
    fill: bool,
    hri: bool,
    hri_pt: f32,
    table: Option<Table>,
}

struct Table {
    rows: String,
    columns: Vec<Column>,
    row_max_lines: usize,
    pad: f32,
    cont_y: f32,
    cont_h: f32,
}

struct Column {
    label: String,
    text: String,
    w: Option<f32>,
    align: Align,
    when: Option<String>,
    max_lines: Option<usize>,
    bars_mm: Option<f32>,
}

/// Byte offset → 1-based line.
fn line_of(src: &str, offset: usize) -> usize {
    src[..offset.min(src.len())].matches('\n').count() + 1
}

/// The line a template string's own line `inner` (1-based) is on in the file. A TOML
/// multi-line string drops a newline right after its opening quotes, so its text starts
/// one line below the quotes.
fn inner_line(src: &str, span: &Range<usize>, inner: usize) -> usize {
    let lit = &src[span.start.min(src.len())..];
    let skip = ["\"\"\"\n", "'''\n", "\"\"\"\r\n", "'''\r\n"]
        .iter()
        .any(|p| lit.starts_with(p));
    line_of(src, span.start) + usize::from(skip) + inner.saturating_sub(1)
}

impl Template {
    /// Load `path`, compiling every text for printing at `dpi` (barcodes snap to its dots).
    pub fn load(path: impl AsRef<Path>, dpi: Dpi) -> Result<Template, TemplateError> {
        let path = path.as_ref();
        let file = path.display().to_string();
        let src = std::fs::read_to_string(path).map_err(|e| TemplateError {
            file: file.clone(),
            line: 0,
            field: "-".into(),
            message: format!("cannot read the template: {e}"),
        })?;
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| file.clone());
        Template::parse(&name, &file, &src, dpi)
    }

    /// Parse a template from its source; `file` is only used in error messages.
    pub fn parse(name: &str, file: &str, src: &str, dpi: Dpi) -> Result<Template, TemplateError> {
        let err = |line: usize, field: String, message: String| TemplateError {
            file: file.to_string(),
            line,
            field,
            message,
        };
        let raw: RawTemplate = toml::from_str(src).map_err(|e| {
            let (line, field) = match e.span() {
                Some(span) => {
                    let line = line_of(src, span.start);
                    // The key is what a person looks for: take it from the line when the
                    // error points at a value, else from the message ("unknown field `x`").
                    let text = src.lines().nth(line - 1).unwrap_or("");
                    let field = match text.split_once('=') {
                        Some((key, _)) if !key.trim().starts_with('[') => key.trim().to_string(),
                        _ => text.trim().to_string(),
                    };
                    (line, field)
                }
                None => (0, "-".into()),
            };
            err(line, field, e.message().trim().to_string())
        })?;
        let page_line = src
            .lines()
            .position(|l| l.trim() == "[page]")
            .map_or(1, |i| i + 1);
        for (field, v) in [
            ("page.width_mm", raw.page.width_mm),
            ("page.height_mm", raw.page.height_mm),
        ] {
            if !(v.is_finite() && v > 0.0 && v <= 2000.0) {
                return Err(err(
                    page_line,
                    field.into(),
                    format!("must be a page size in mm between 0 and 2000, got {v}"),
                ));
            }
        }

        let mut env = Environment::new();
        // Labels are not HTML: "<" and "&" in an address must print as they are.
        env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
        // Names are checked against the context at load, so what is left undefined at render
        // time is an absent optional value (no memo, hidden prices): `{{ memo.text }}` then
        // prints nothing instead of failing the whole wave.
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Chainable);
        let schema = Schema::new(raw.context);
        let mut elements = Vec::new();
        let mut tables = 0;
        for (i, spanned) in raw.elements.iter().enumerate() {
            let el_line = line_of(src, spanned.span().start);
            let r = spanned.get_ref();
            let field = |f: &str| format!("element[{i}].{f}");
            // Compiles one template string into `env` under `key` and checks its variables.
            let compile = |env: &mut Environment<'static>,
                           f: &str,
                           s: &Spanned<String>,
                           wrap_as_condition: bool,
                           extra: &[&str]|
             -> Result<String, TemplateError> {
                let key = format!("e{i}.{f}");
                let source = if wrap_as_condition {
                    format!("{{% if {} %}}1{{% endif %}}", s.get_ref())
                } else {
                    s.get_ref().clone()
                };
                env.add_template_owned(key.clone(), source).map_err(|e| {
                    let line = inner_line(src, &s.span(), e.line().unwrap_or(1));
                    err(
                        line,
                        field(f),
                        format!(
                            "template syntax: {}",
                            e.detail().map_or_else(|| e.to_string(), str::to_string)
                        ),
                    )
                })?;
                let t = env.get_template(&key).expect("just added");
                if let Err(unknown) = schema.check(&t.undeclared_variables(true), extra) {
                    return Err(err(
                        line_of(src, s.span().start),
                        field(f),
                        format!("unknown variable `{unknown}`; see templates/README.md"),
                    ));
                }
                Ok(key)
            };
            let need = |what: &str, v: Option<f32>| {
                v.filter(|v| v.is_finite() && *v > 0.0).ok_or_else(|| {
                    err(
                        el_line,
                        field(what),
                        format!("kind = \"{:?}\" needs a positive `{what}`", r.kind).to_lowercase(),
                    )
                })
            };
            let when = match &r.when {
                Some(w) => Some(compile(&mut env, "when", w, true, &[])?),
                None => None,
            };
            let text_src = match r.kind {
                Kind::Text => r.text.as_ref(),
                Kind::Qr | Kind::Code128 => r.data.as_ref(),
                _ => None,
            };
            let text = match text_src {
                Some(t) => Some(compile(
                    &mut env,
                    if r.kind == Kind::Text { "text" } else { "data" },
                    t,
                    false,
                    &[],
                )?),
                None if matches!(r.kind, Kind::Text) => {
                    return Err(err(
                        el_line,
                        field("text"),
                        "a text element needs `text`".into(),
                    ));
                }
                None if matches!(r.kind, Kind::Qr | Kind::Code128) => {
                    return Err(err(el_line, field("data"), "a barcode needs `data`".into()));
                }
                None => None,
            };
            let fallback = match (&r.fallback, r.kind) {
                (Some(f), Kind::Text) => Some(compile(&mut env, "fallback", f, false, &[])?),
                (Some(_), _) => {
                    return Err(err(
                        el_line,
                        field("fallback"),
                        "only a text element has a `fallback`".into(),
                    ));
                }
                (None, _) => None,
            };
            let (w, h) = match r.kind {
                Kind::Text | Kind::Rect | Kind::Code128 | Kind::Items => {
                    (need("w_mm", r.w_mm)?, need("h_mm", r.h_mm)?)
                }
                Kind::Qr => {
                    let s = need("w_mm", r.w_mm)?;
                    (s, r.h_mm.unwrap_or(s))
                }
                Kind::Line => (r.w_mm.unwrap_or(0.0), r.h_mm.unwrap_or(0.0)),
            };
            let size_pt = r.size_pt.unwrap_or(9.0);
            let min_pt = r.min_pt.unwrap_or(size_pt).min(size_pt);
            if !(size_pt > 0.0 && min_pt > 0.0) {
                return Err(err(
                    el_line,
                    field("size_pt"),
                    "sizes must be positive".into(),
                ));
            }
            let table = if r.kind == Kind::Items {
                tables += 1;
                if tables > 1 {
                    return Err(err(
                        el_line,
                        field("kind"),
                        "only one items table per template: it decides the page breaks".into(),
                    ));
                }
                let rows = r.rows.clone().unwrap_or_else(|| "items".into());
                if !schema.lists.contains_key(rows.as_str()) {
                    return Err(err(
                        el_line,
                        field("rows"),
                        format!("`{rows}` is not a list in the {:?} context", raw.context),
                    ));
                }
                let Some(cols) = &r.columns else {
                    return Err(err(
                        el_line,
                        field("columns"),
                        "an items table needs `columns`".into(),
                    ));
                };
                let mut columns = Vec::new();
                let mut fixed = 0.0;
                for (c, col) in cols.iter().enumerate() {
                    let cr = col.get_ref();
                    let key = format!("columns[{c}]");
                    let row_vars = ["row", "index"];
                    let t = compile(&mut env, &format!("{key}.text"), &cr.text, false, &row_vars)?;
                    let when = match &cr.when {
                        Some(w) => Some(compile(&mut env, &format!("{key}.when"), w, true, &[])?),
                        None => None,
                    };
                    if let Some(b) = cr.bars_mm
                        && !(b.is_finite() && b > 0.0)
                    {
                        return Err(err(
                            el_line,
                            field(&format!("{key}.bars_mm")),
                            format!(
                                "the bar height must be a positive number of millimetres, got {b}"
                            ),
                        ));
                    }
                    fixed += cr.w_mm.unwrap_or(0.0);
                    columns.push(Column {
                        bars_mm: cr.bars_mm,
                        label: cr.label.clone(),
                        text: t,
                        w: cr.w_mm,
                        align: cr.align,
                        when,
                        max_lines: cr.max_lines.map(|m| m.max(1)),
                    });
                }
                if fixed > w + 1e-3 {
                    return Err(err(
                        el_line,
                        field("columns"),
                        format!(
                            "the fixed column widths add up to {fixed} mm, wider than w_mm = {w}"
                        ),
                    ));
                }
                let cont_y = r.continue_y_mm.unwrap_or(8.0);
                Some(Table {
                    rows,
                    columns,
                    row_max_lines: r.row_max_lines.unwrap_or(2).max(1),
                    pad: r.padding_mm.unwrap_or(0.8),
                    cont_y,
                    cont_h: r.continue_h_mm.unwrap_or(raw.page.height_mm - cont_y - 8.0),
                })
            } else {
                None
            };
            elements.push(Element {
                label: r.name.clone().unwrap_or_else(|| format!("element[{i}]")),
                kind: r.kind,
                x: r.x_mm,
                y: r.y_mm,
                w,
                h,
                x2: r.x2_mm.unwrap_or(r.x_mm + w),
                y2: r.y2_mm.unwrap_or(r.y_mm + h),
                text,
                fallback,
                when,
                pages: r.pages,
                size_pt,
                min_pt,
                max_lines: r.max_lines,
                bold: r.bold,
                invert: r.invert,
                align: r.align,
                valign: r.valign,
                thickness_pt: r.thickness_pt.unwrap_or(0.5),
                fill: r.fill,
                hri: r.hri,
                hri_pt: r.hri_pt.unwrap_or(8.0),
                table,
            });
        }
        Ok(Template {
            name: name.to_string(),
            description: raw.description.clone(),
            file: file.to_string(),
            page_w: raw.page.width_mm,
            page_h: raw.page.height_mm,
            dpi,
            context: raw.context,
            elements,
            env,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The template's `description`, for listings ("快递面单 100×150").
    pub fn description(&self) -> Option<&str> {
        self.description.as_deref()
    }

    /// Page size in millimetres (width, height).
    pub fn page_mm(&self) -> (f32, f32) {
        (self.page_w, self.page_h)
    }

    pub fn dpi(&self) -> Dpi {
        self.dpi
    }

    pub fn context_kind(&self) -> ContextKind {
        self.context
    }
}

/// The variables a template may use: top-level names, and for each object its keys.
struct Schema {
    top: HashMap<String, serde_json::Value>,
    /// List-valued fields (usable as an items table's `rows`) and the keys of their rows.
    lists: HashMap<String, HashSet<String>>,
}

/// Names every template may use besides the context: the page counters and minijinja's
/// own globals.
const ALWAYS: [&str; 6] = ["page", "pages", "range", "loop", "namespace", "dict"];

impl Schema {
    fn new(kind: ContextKind) -> Schema {
        let sample = match kind {
            ContextKind::Order => serde_json::to_value(context::sample_context()),
            ContextKind::Manifest => serde_json::to_value(context::sample_manifest()),
            ContextKind::Picklist => serde_json::to_value(context::sample_picklist()),
        }
        .expect("contexts serialise");
        let serde_json::Value::Object(map) = sample else {
            unreachable!("contexts are structs")
        };
        let mut lists = HashMap::new();
        for (k, v) in &map {
            if let serde_json::Value::Array(rows) = v {
                let keys = rows
                    .iter()
                    .filter_map(|r| r.as_object())
                    .flat_map(|o| o.keys().cloned())
                    .collect();
                lists.insert(k.clone(), keys);
            }
        }
        Schema {
            top: map.into_iter().collect(),
            lists,
        }
    }

    /// Ok, or the first variable that names nothing in the context. `extra` are names the
    /// caller defines (`row`, `index` in table cells); `row.x` is checked against every
    /// list's row keys, since a template may use any list as its rows.
    fn check(&self, vars: &HashSet<String>, extra: &[&str]) -> Result<(), String> {
        let mut vars: Vec<&String> = vars.iter().collect();
        vars.sort();
        for var in vars {
            let mut parts = var.split('.');
            let head = parts.next().unwrap_or("");
            let next = parts.next();
            if ALWAYS.contains(&head) {
                continue;
            }
            if extra.contains(&head) {
                if head == "row"
                    && let Some(key) = next
                    && !self.lists.values().any(|keys| keys.contains(key))
                {
                    return Err(var.clone());
                }
                continue;
            }
            match self.top.get(head) {
                None => return Err(var.clone()),
                Some(serde_json::Value::Object(o)) => {
                    if let Some(key) = next
                        && !o.contains_key(key)
                    {
                        return Err(var.clone());
                    }
                }
                Some(_) => {}
            }
        }
        Ok(())
    }
}

/// Render documents through `template` into one PDF, pages in input order.
pub fn render(template: &Template, docs: &[DocInput]) -> Result<Rendered, RenderError> {
    let values: Vec<(String, Value)> = docs
        .iter()
        .map(|d| {
            (
                d.order.id.clone(),
                Value::from(minijinja::value::Serde(context(d))),
            )
        })
        .collect();
    render_values(template, &values)
}

/// Every page of the documents rendered together as 1-bit images for a thermal printer.
#[derive(Debug)]
pub struct RasterRendered {
    /// One bitmap per page, at the template's dpi, in input order.
    pub pages: Vec<Bitmap>,
    /// Pages per input document, in input order.
    pub per_doc_pages: Vec<usize>,
    /// The same warnings `render` gives for these documents.
    pub warnings: Vec<(String, String)>,
}

/// Render documents through `template` into 1-bit pages at the template's dpi (which is
/// the printer's: load the template with the printer's `Dpi`, so barcodes are snapped to
/// its dots). The layout is the PDF's: both draw the ops of `render_doc`.
pub fn render_raster(
    template: &Template,
    docs: &[DocInput],
) -> Result<RasterRendered, RenderError> {
    let chain = FontChain::embedded();
    let mut fonts = DocFonts {
        ids: BTreeMap::new(),
    };
    let mut out = RasterRendered {
        pages: Vec::new(),
        per_doc_pages: Vec::new(),
        warnings: Vec::new(),
    };
    for d in docs {
        let value = Value::from(minijinja::value::Serde(context(d)));
        let mut cx = Ctx {
            template,
            chain,
            order: &d.order.id,
            warnings: &mut out.warnings,
            fonts: &mut fonts,
            doc: None,
        };
        let doc_pages = render_doc(&mut cx, &value)?;
        out.per_doc_pages.push(doc_pages.len());
        out.pages.extend(
            doc_pages
                .iter()
                .map(|ops| raster::rasterize(ops, template.page_mm(), template.dpi)),
        );
    }
    Ok(out)
}

/// Render one handover manifest through a `context = "manifest"` template.
pub fn render_manifest(
    template: &Template,
    manifest: &ManifestContext,
) -> Result<Rendered, RenderError> {
    let id = (manifest.batch.clone().or_else(|| manifest.wave.clone()))
        .unwrap_or_else(|| "manifest".into());
    render_values(
        template,
        &[(id, Value::from(minijinja::value::Serde(manifest)))],
    )
}

/// Render a wave's pick list through a `context = "picklist"` template: the
/// pick lines, then the slot table, in one PDF.
pub fn render_picklist(
    template: &Template,
    picklist: &context::PicklistContext,
) -> Result<Rendered, RenderError> {
    let docs: Vec<(String, Value)> = picklist
        .parts()
        .into_iter()
        .map(|p| {
            (
                format!("wave {} {}", p.wave, p.part),
                Value::from(minijinja::value::Serde(p)),
            )
        })
        .collect();
    render_values(template, &docs)
}

/// The faces of one PDF document, added on first use so that a face no text needs is not
/// embedded at all (an empty subset still costs a font dictionary and a file). Without a
/// document (the raster path) a face gets the fixed id `raster::rasterize` knows it by.
struct DocFonts {
    ids: BTreeMap<FaceId, FontId>,
}

impl DocFonts {
    fn id(&mut self, doc: Option<&mut PdfDocument>, chain: &FontChain, face: FaceId) -> FontId {
        let Some(doc) = doc else {
            return super::raster::font_id(face);
        };
        self.ids
            .entry(face)
            .or_insert_with(|| doc.add_font(chain.parsed(face)))
            .clone()
    }
}

/// Everything drawing one document needs besides the element itself.
struct Ctx<'a> {
    template: &'a Template,
    chain: &'a FontChain,
    order: &'a str,
    warnings: &'a mut Vec<(String, String)>,
    fonts: &'a mut DocFonts,
    /// The PDF being written, or `None` when the pages are rasterized instead.
    doc: Option<&'a mut PdfDocument>,
}

fn render_values(template: &Template, docs: &[(String, Value)]) -> Result<Rendered, RenderError> {
    let chain = FontChain::embedded();
    let mut doc = PdfDocument::new(&template.name);
    // printpdf defaults every date to 1970; viewers and archives show the creation date.
    let now = printpdf::OffsetDateTime::now_utc();
    doc.metadata.info.creation_date = now;
    doc.metadata.info.modification_date = now;
    doc.metadata.info.metadata_date = now;
    doc.metadata.info.producer = "station".into();
    let mut fonts = DocFonts {
        ids: BTreeMap::new(),
    };
    let mut warnings = Vec::new();
    let mut pages = Vec::new();
    let mut per_doc_pages = Vec::new();
    for (order, value) in docs {
        let mut cx = Ctx {
            template,
            chain,
            order,
            warnings: &mut warnings,
            fonts: &mut fonts,
            doc: Some(&mut doc),
        };
        let doc_pages = render_doc(&mut cx, value)?;
        per_doc_pages.push(doc_pages.len());
        pages.extend(
            doc_pages
                .into_iter()
                .map(|ops| PdfPage::new(Mm(template.page_w), Mm(template.page_h), ops)),
        );
    }
    let n = pages.len();
    let mut save_warnings = Vec::new();
    let pdf = super::pdf::save(doc.with_pages(pages), super::pdf::LEVEL, &mut save_warnings);
    Ok(Rendered {
        pdf,
        pages: n,
        per_doc_pages,
        warnings,
    })
}

impl Ctx<'_> {
    fn eval(&self, key: &str, field: &str, value: &Value) -> Result<String, RenderError> {
        let t = self
            .template
            .env
            .get_template(key)
            .expect("compiled at load");
        t.render(value).map_err(|source| RenderError::Template {
            order: self.order.to_string(),
            template: self.template.file.clone(),
            field: field.to_string(),
            source,
        })
    }

    fn truthy(
        &self,
        key: &Option<String>,
        field: &str,
        value: &Value,
    ) -> Result<bool, RenderError> {
        match key {
            Some(k) => Ok(!self.eval(k, field, value)?.is_empty()),
            None => Ok(true),
        }
    }

    fn warn(&mut self, message: String) {
        self.warnings.push((
            self.order.to_string(),
            format!("order {}: {message}", self.order),
        ));
    }
}

/// A laid-out table row: its cells' fitted text and its height.
struct Row {
    cells: Vec<Cell>,
    h: f32,
}

/// One table cell: its text fitted, and for a barcode column the symbol drawn
/// above that text (the digits a person reads).
struct Cell {
    text: fonts::Fitted,
    bars: Option<barcode::Symbol>,
}

fn line_mm(size_pt: f32) -> f32 {
    size_pt * LINE_HEIGHT * MM_PER_PT
}

/// Wrap `text` into `w` × `max_lines` (and `h` when given), shrinking down to `min_pt`.
/// Never draws outside the box: when even `min_pt` does not fit, the lines that
/// fit come back, the last one ending in "…", and `overflow` is set so the
/// label is flagged for a person (text drawn over the next block — the
/// sender's, on a waybill — is worse than text cut and flagged).
fn fit(
    chain: &FontChain,
    text: &str,
    size_pt: f32,
    min_pt: f32,
    w: f32,
    h: Option<f32>,
    max_lines: Option<usize>,
) -> fonts::Fitted {
    let mut size = size_pt;
    loop {
        let lines = fonts::wrap(chain, text, size, w);
        let cap = match (h, max_lines) {
            (Some(h), Some(m)) => fonts::lines_in_height(h, size).min(m),
            (Some(h), None) => fonts::lines_in_height(h, size),
            (None, Some(m)) => m,
            (None, None) => usize::MAX,
        };
        let too_wide = lines.iter().any(|l| chain.width_mm(l, size) > w + 1e-3);
        let fits = lines.len() <= cap && !too_wide;
        if fits {
            return fonts::Fitted {
                size_pt: size,
                lines,
                overflow: false,
            };
        }
        if size <= min_pt {
            return fonts::Fitted {
                size_pt: size,
                lines: cut(chain, lines, cap, size, w),
                overflow: true,
            };
        }
        size = (size - fonts::FIT_STEP_PT).max(min_pt);
    }
}

/// The start of `lines` that fits `cap` lines of width `w`: up to the first
/// line too wide or past `cap`, the last line kept ending in "…" (dropped too
/// when not even that fits). What is drawn is always a prefix of the text.
fn cut(chain: &FontChain, mut lines: Vec<String>, cap: usize, size: f32, w: f32) -> Vec<String> {
    use unicode_segmentation::UnicodeSegmentation as _;
    let fits = |s: &str| chain.width_mm(s, size) <= w + 1e-3;
    let mut cut_any = lines.len() > cap;
    lines.truncate(cap);
    if let Some(wide) = lines.iter().position(|l| !fits(l)) {
        lines.truncate(wide + 1);
        cut_any = true;
    }
    if cut_any && let Some(last) = lines.last_mut() {
        let mut keep: Vec<&str> = last.graphemes(true).collect();
        while !keep.is_empty() && !fits(&format!("{}…", keep.concat())) {
            keep.pop();
        }
        *last = if fits(&format!("{}…", keep.concat())) {
            format!("{}…", keep.concat())
        } else {
            String::new()
        };
    }
    lines.retain(|l| !l.is_empty());
    lines
}

/// Lays out the table rows and splits them into pages. Returns the rows of each page
/// (at least one page, possibly with no rows).
fn paginate(
    cx: &mut Ctx,
    el: &Element,
    table: &Table,
    widths: &[(usize, f32)],
    base: &Value,
) -> Result<Vec<Vec<Row>>, RenderError> {
    let rows_value = base.get_attr(&table.rows).unwrap_or(Value::UNDEFINED);
    let mut rows = Vec::new();
    if let Ok(iter) = rows_value.try_iter() {
        for (i, row) in iter.enumerate() {
            let v = minijinja::context! { row => row, index => i + 1, ..base.clone() };
            let mut cells = Vec::new();
            let mut h: f32 = 0.0;
            for &(c, w) in widths {
                let col = &table.columns[c];
                let text = cx.eval(&col.text, &format!("{}.columns[{c}]", el.label), &v)?;
                let text = text.trim();
                check_missing(cx, text, &format!("{} ({})", el.label, col.label));
                let inner = (w - 2.0 * table.pad).max(1.0);
                // A code too long for the cell at two dots per module (one-dot
                // bars do not read reliably) or not printable ASCII is printed
                // as its characters alone: nothing is lost.
                let dpi = cx.template.dpi;
                let bars = match col.bars_mm {
                    Some(bar_h) if !text.is_empty() => barcode::code128(text, inner, bar_h, dpi)
                        .ok()
                        .filter(|sym| {
                            let narrowest = sym.bars.iter().map(|b| b.w).fold(f32::MAX, f32::min);
                            narrowest >= 2.0 * dpi.dot_mm() - 1e-3
                        }),
                    _ => None,
                };
                // Under bars the characters are small, on one line.
                let (size, min, max_lines) = match &bars {
                    Some(_) => (el.min_pt, el.min_pt * 0.8, 1),
                    None => (
                        el.size_pt,
                        el.min_pt,
                        col.max_lines.unwrap_or(table.row_max_lines),
                    ),
                };
                let f = fit(cx.chain, text, size, min, inner, None, Some(max_lines));
                if f.overflow {
                    cx.warn(format!(
                        "field {} ({}) of row {} overflows its cell",
                        el.label,
                        col.label,
                        i + 1
                    ));
                }
                let bars_h = bars.as_ref().map_or(0.0, |b| b.height_mm);
                h = h.max(bars_h + f.lines.len().max(1) as f32 * line_mm(f.size_pt));
                cells.push(Cell { text: f, bars });
            }
            rows.push(Row {
                cells,
                h: h + 2.0 * table.pad,
            });
        }
    }
    let header_h = line_mm(el.size_pt) + 2.0 * table.pad;
    let mut pages: Vec<Vec<Row>> = vec![Vec::new()];
    let mut used = header_h;
    for row in rows {
        let region_h = if pages.len() == 1 { el.h } else { table.cont_h };
        let page = pages.last_mut().expect("one page at least");
        // A row taller than a whole region still goes on a page of its own rather than
        // looping forever; it runs past the region and the page shows it.
        if !page.is_empty() && used + row.h > region_h + 1e-3 {
            pages.push(Vec::new());
            used = header_h;
        }
        used += row.h;
        pages.last_mut().expect("just pushed").push(row);
    }
    Ok(pages)
}

/// Warns about characters in no font: they are left out of the drawn text, so the order
/// must be looked at rather than shipped with a name missing a character.
fn check_missing(cx: &mut Ctx, text: &str, label: &str) {
    let missing = cx.chain.runs(text).missing;
    if !missing.is_empty() {
        let chars: String = missing.iter().collect();
        cx.warn(format!("field {label} has characters in no font: {chars}"));
    }
}

/// Column indices and widths of the visible columns of a table for this document. Columns
/// without `w_mm` share what the fixed ones leave, including the width of hidden columns.
fn column_widths(
    cx: &Ctx,
    el: &Element,
    table: &Table,
    base: &Value,
) -> Result<Vec<(usize, f32)>, RenderError> {
    let mut visible = Vec::new();
    for (c, col) in table.columns.iter().enumerate() {
        if cx.truthy(&col.when, &format!("{}.columns[{c}].when", el.label), base)? {
            visible.push(c);
        }
    }
    let fixed: f32 = visible.iter().filter_map(|&c| table.columns[c].w).sum();
    let flexible = visible
        .iter()
        .filter(|&&c| table.columns[c].w.is_none())
        .count();
    let share = if flexible > 0 {
        (el.w - fixed).max(0.0) / flexible as f32
    } else {
        0.0
    };
    let mut out: Vec<(usize, f32)> = visible
        .iter()
        .map(|&c| (c, table.columns[c].w.unwrap_or(share)))
        .collect();
    // With no flexible column the last visible one takes the slack, so the table always
    // spans its box.
    if flexible == 0
        && let Some(last) = out.last_mut()
    {
        last.1 += (el.w - fixed).max(0.0);
    }
    Ok(out)
}

/// The laid-out table of one document: element index, visible columns with their widths,
/// and the rows of each page.
type TableLayout = (usize, Vec<(usize, f32)>, Vec<Vec<Row>>);

fn render_doc(cx: &mut Ctx, base: &Value) -> Result<Vec<Vec<Op>>, RenderError> {
    let template = cx.template;
    // The table decides how many pages the document has, so it is laid out first.
    let mut layout: Option<TableLayout> = None;
    for (i, el) in template.elements.iter().enumerate() {
        if let Some(table) = &el.table
            && cx.truthy(&el.when, &format!("{}.when", el.label), base)?
        {
            let widths = column_widths(cx, el, table, base)?;
            let pages = paginate(cx, el, table, &widths, base)?;
            layout = Some((i, widths, pages));
        }
    }
    let n = layout.as_ref().map_or(1, |l| l.2.len());
    let mut out = Vec::with_capacity(n);
    for p in 0..n {
        let value = minijinja::context! { page => p + 1, pages => n, ..base.clone() };
        let mut ops = Vec::new();
        for (i, el) in template.elements.iter().enumerate() {
            let on_page = match el.pages {
                Pages::First => p == 0,
                Pages::All => true,
                Pages::Last => p + 1 == n,
                Pages::Rest => p > 0,
            };
            // The table spans every page it needs, whatever `pages` says.
            if el.kind == Kind::Items {
                if let Some((li, widths, pages)) = &layout
                    && *li == i
                {
                    draw_table(cx, el, widths, &pages[p], p, &mut ops);
                }
                continue;
            }
            if !on_page {
                continue;
            }
            if !cx.truthy(&el.when, &format!("{}.when", el.label), &value)? {
                continue;
            }
            draw_element(cx, el, &value, &mut ops)?;
        }
        out.push(ops);
    }
    Ok(out)
}

fn grey(percent: f32) -> Color {
    Color::Greyscale(Greyscale {
        percent,
        icc_profile: None,
    })
}

impl Ctx<'_> {
    fn pt_x(&self, x: f32) -> Pt {
        Pt::from(Mm(x))
    }

    fn pt_y(&self, y_from_top: f32) -> Pt {
        Pt::from(Mm(self.template.page_h - y_from_top))
    }

    fn point(&self, x: f32, y: f32) -> LinePoint {
        LinePoint {
            p: Point {
                x: self.pt_x(x),
                y: self.pt_y(y),
            },
            bezier: false,
        }
    }
}

fn stroke_line(cx: &Ctx, x1: f32, y1: f32, x2: f32, y2: f32, thickness_pt: f32, ops: &mut Vec<Op>) {
    ops.push(Op::SaveGraphicsState);
    ops.push(Op::SetOutlineColor { col: grey(0.0) });
    ops.push(Op::SetOutlineThickness {
        pt: Pt(thickness_pt),
    });
    ops.push(Op::DrawLine {
        line: Line {
            points: vec![cx.point(x1, y1), cx.point(x2, y2)],
            is_closed: false,
        },
    });
    ops.push(Op::RestoreGraphicsState);
}

#[allow(clippy::too_many_arguments)]
fn rect_ops(
    cx: &Ctx,
    x: f32,
    y: f32,
    w: f32,
    h: f32,
    fill: bool,
    thickness_pt: f32,
    ops: &mut Vec<Op>,
) {
    ops.push(Op::SaveGraphicsState);
    ops.push(Op::SetOutlineColor { col: grey(0.0) });
    ops.push(Op::SetFillColor { col: grey(0.0) });
    ops.push(Op::SetOutlineThickness {
        pt: Pt(thickness_pt),
    });
    ops.push(Op::DrawRectangle {
        rectangle: printpdf::Rect {
            x: cx.pt_x(x),
            y: cx.pt_y(y + h),
            width: Pt::from(Mm(w)),
            height: Pt::from(Mm(h)),
            mode: Some(if fill {
                PaintMode::Fill
            } else {
                PaintMode::Stroke
            }),
            winding_order: None,
        },
    });
    ops.push(Op::RestoreGraphicsState);
}

/// A text element's box and type settings: what `place_field` needs of an element.
#[doc(hidden)]
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TextBox {
    pub x: f32,
    pub y: f32,
    pub w: f32,
    pub h: f32,
    pub size_pt: f32,
    pub min_pt: f32,
    pub max_lines: Option<usize>,
    pub align: Align,
    pub valign: VAlign,
    /// White on a black box, drawn with a 1 mm inset.
    pub invert: bool,
}

impl TextBox {
    fn of(el: &Element) -> TextBox {
        TextBox {
            x: el.x,
            y: el.y,
            w: el.w,
            h: el.h,
            size_pt: el.size_pt,
            min_pt: el.min_pt,
            max_lines: el.max_lines,
            align: el.align,
            valign: el.valign,
            invert: el.invert,
        }
    }
}

/// One run of glyphs of one face as drawn: its left edge and baseline, and the
/// line box it sits in (`top`, `line_h`), in mm from the page's top-left corner.
#[doc(hidden)]
#[derive(Clone, Debug, PartialEq)]
pub struct PlacedRun {
    pub face: FaceId,
    pub text: String,
    pub x: f32,
    pub width: f32,
    pub top: f32,
    pub baseline: f32,
    pub line_h: f32,
}

/// A text field's content as drawn: the fitted lines and every run's place.
#[doc(hidden)]
#[derive(Clone, Debug, PartialEq)]
pub struct PlacedText {
    pub fitted: fonts::Fitted,
    pub runs: Vec<PlacedRun>,
}

/// Where a text element's (already evaluated and trimmed) text is drawn: fitted
/// into the box (inset by 1 mm when inverted), aligned, every run placed. This is
/// what `draw_element` draws; `place_text` exposes it to the property tests.
fn place_field(chain: &FontChain, text: &str, b: &TextBox) -> PlacedText {
    // Inverted text sits on a black box with a little inset. A box narrower
    // than the inset leaves no room: the text then overflows (and the order is
    // flagged) rather than being fitted to a width the box does not have.
    let inset = if b.invert { 1.0 } else { 0.0 };
    let fitted = fit(
        chain,
        text,
        b.size_pt,
        b.min_pt,
        (b.w - 2.0 * inset).max(0.0),
        Some(b.h),
        b.max_lines,
    );
    let used = fitted.lines.len() as f32 * line_mm(fitted.size_pt);
    let top = match b.valign {
        VAlign::Top => b.y,
        VAlign::Middle => b.y + ((b.h - used) / 2.0).max(0.0),
        VAlign::Bottom => b.y + (b.h - used).max(0.0),
    };
    let runs = place_lines(
        chain,
        &fitted.lines,
        fitted.size_pt,
        b.x + inset,
        top,
        b.w - 2.0 * inset,
        b.align,
    );
    PlacedText { fitted, runs }
}

/// `place_field` with the embedded fonts, for tests: the geometry of a text field.
#[doc(hidden)]
pub fn place_text(text: &str, b: &TextBox) -> PlacedText {
    place_field(FontChain::embedded(), text, b)
}

/// Places `lines` of `size_pt` text top-down from `y` in a column `w` wide at `x`.
fn place_lines(
    chain: &FontChain,
    lines: &[String],
    size_pt: f32,
    x: f32,
    y: f32,
    w: f32,
    align: Align,
) -> Vec<PlacedRun> {
    let line_h = line_mm(size_pt);
    let mut placed = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let shaped = chain.runs(line);
        let width = shaped.width_em() * size_pt * MM_PER_PT;
        let mut pen = match align {
            Align::Left => x,
            Align::Center => x + (w - width) / 2.0,
            Align::Right => x + w - width,
        };
        let top = y + i as f32 * line_h;
        // The baseline sits 0.95 em below the line's top, which centres CJK glyphs (about
        // 0.88 em above and 0.12 em below the baseline) in the 1.2 em line.
        let baseline = top + (0.1 + 0.88) * size_pt * MM_PER_PT;
        for run in &shaped.runs {
            let run_w = run.width_em * size_pt * MM_PER_PT;
            placed.push(PlacedRun {
                face: run.face,
                text: run.text.to_string(),
                x: pen,
                width: run_w,
                top,
                baseline,
                line_h,
            });
            pen += run_w;
        }
    }
    placed
}

/// Text lines placed in a box: one `SetTextMatrix` + `ShowText` per run, absolute.
#[allow(clippy::too_many_arguments)]
fn text_ops(
    cx: &mut Ctx,
    lines: &[String],
    size_pt: f32,
    x: f32,
    y: f32,
    w: f32,
    align: Align,
    bold: bool,
    white: bool,
    ops: &mut Vec<Op>,
) {
    let runs = place_lines(cx.chain, lines, size_pt, x, y, w, align);
    runs_ops(cx, &runs, size_pt, bold, white, ops);
}

fn runs_ops(
    cx: &mut Ctx,
    runs: &[PlacedRun],
    size_pt: f32,
    bold: bool,
    white: bool,
    ops: &mut Vec<Op>,
) {
    ops.push(Op::SaveGraphicsState);
    ops.push(Op::StartTextSection);
    if white {
        ops.push(Op::SetFillColor { col: grey(1.0) });
    }
    if bold {
        // There is no bold face in the chain; filling and stroking the outline with a
        // hairline thickens the strokes enough for headings on a thermal print.
        ops.push(Op::SetTextRenderingMode {
            mode: TextRenderingMode::FillStroke,
        });
        ops.push(Op::SetOutlineColor {
            col: grey(if white { 1.0 } else { 0.0 }),
        });
        ops.push(Op::SetOutlineThickness {
            pt: Pt(size_pt * 0.04),
        });
    }
    let mut current: Option<FaceId> = None;
    for run in runs {
        if current != Some(run.face) {
            let id = cx.fonts.id(cx.doc.as_deref_mut(), cx.chain, run.face);
            ops.push(Op::SetFont {
                font: PdfFontHandle::External(id),
                size: Pt(size_pt),
            });
            current = Some(run.face);
        }
        ops.push(Op::SetTextMatrix {
            matrix: TextMatrix::Translate(cx.pt_x(run.x), cx.pt_y(run.baseline)),
        });
        ops.push(Op::ShowText {
            items: vec![TextItem::Text(run.text.clone())],
        });
    }
    ops.push(Op::EndTextSection);
    ops.push(Op::RestoreGraphicsState);
}

fn draw_element(
    cx: &mut Ctx,
    el: &Element,
    value: &Value,
    ops: &mut Vec<Op>,
) -> Result<(), RenderError> {
    match el.kind {
        Kind::Line => stroke_line(cx, el.x, el.y, el.x2, el.y2, el.thickness_pt, ops),
        Kind::Rect => rect_ops(cx, el.x, el.y, el.w, el.h, el.fill, el.thickness_pt, ops),
        Kind::Text => {
            let key = el.text.as_deref().expect("checked at load");
            let text = cx.eval(key, &format!("{}.text", el.label), value)?;
            let text = text.trim();
            if text.is_empty() {
                return Ok(());
            }
            check_missing(cx, text, &el.label);
            let mut placed = place_field(cx.chain, text, &TextBox::of(el));
            // Too long even at its smallest size: the template's shorter form
            // (e.g. the address without the instructions, which the slip carries).
            if placed.fitted.overflow
                && let Some(key) = el.fallback.as_deref()
            {
                let short = cx.eval(key, &format!("{}.fallback", el.label), value)?;
                let short = short.trim();
                if !short.is_empty() && short != text {
                    placed = place_field(cx.chain, short, &TextBox::of(el));
                }
            }
            if placed.fitted.overflow {
                cx.warn(format!("field {} overflows its box", el.label));
            }
            if el.invert {
                rect_ops(cx, el.x, el.y, el.w, el.h, true, 0.0, ops);
            }
            runs_ops(
                cx,
                &placed.runs,
                placed.fitted.size_pt,
                el.bold,
                el.invert,
                ops,
            );
        }
        Kind::Qr | Kind::Code128 => {
            let key = el.text.as_deref().expect("checked at load");
            let data = cx.eval(key, &format!("{}.data", el.label), value)?;
            let data = data.trim();
            if data.is_empty() {
                cx.warn(format!("field {} has no data: barcode left out", el.label));
                return Ok(());
            }
            let dpi = cx.template.dpi;
            let bar_err = |source| RenderError::Barcode {
                order: cx.order.to_string(),
                template: cx.template.file.clone(),
                field: el.label.clone(),
                source,
            };
            if el.kind == Kind::Qr {
                let side = el.w.min(el.h);
                let sym = barcode::qr(data, side, dpi).map_err(bar_err)?;
                let x = dpi.snap_mm(el.x + (el.w - sym.width_mm) / 2.0);
                let y = dpi.snap_mm(el.y + (el.h - sym.height_mm) / 2.0);
                ops.extend(barcode::to_ops(&sym, x, y, cx.template.page_h));
            } else {
                let hri_h = if el.hri { line_mm(el.hri_pt) } else { 0.0 };
                let sym =
                    barcode::code128(data, el.w, (el.h - hri_h).max(1.0), dpi).map_err(bar_err)?;
                let x = dpi.snap_mm(el.x + (el.w - sym.width_mm) / 2.0);
                let y = dpi.snap_mm(el.y);
                ops.extend(barcode::to_ops(&sym, x, y, cx.template.page_h));
                if el.hri {
                    // Digits spaced out a little, the way couriers print them, so a person
                    // reading a number aloud does not lose their place.
                    let spaced = data.chars().map(String::from).collect::<Vec<_>>().join(" ");
                    let text = if cx.chain.width_mm(&spaced, el.hri_pt) <= el.w {
                        spaced
                    } else {
                        data.to_string()
                    };
                    let f = fit(
                        cx.chain,
                        &text,
                        el.hri_pt,
                        el.hri_pt * 0.7,
                        el.w,
                        None,
                        Some(1),
                    );
                    text_ops(
                        cx,
                        &f.lines,
                        f.size_pt,
                        el.x,
                        y + sym.height_mm,
                        el.w,
                        Align::Center,
                        false,
                        false,
                        ops,
                    );
                }
            }
        }
        Kind::Items => {}
    }
    Ok(())
}

fn draw_table(
    cx: &mut Ctx,
    el: &Element,
    widths: &[(usize, f32)],
    rows: &[Row],
    page: usize,
    ops: &mut Vec<Op>,
) {
    let table = el.table.as_ref().expect("items element");
    let y0 = if page == 0 { el.y } else { table.cont_y };
    let pad = table.pad;
    let header_h = line_mm(el.size_pt) + 2.0 * pad;
    // Header on every page, so a continuation page is readable on its own.
    let mut x = el.x;
    for &(c, w) in widths {
        let col = &table.columns[c];
        text_ops(
            cx,
            std::slice::from_ref(&col.label),
            el.size_pt,
            x + pad,
            y0 + pad,
            w - 2.0 * pad,
            col.align,
            true,
            false,
            ops,
        );
        x += w;
    }
    stroke_line(cx, el.x, y0, el.x + el.w, y0, 0.8, ops);
    stroke_line(
        cx,
        el.x,
        y0 + header_h,
        el.x + el.w,
        y0 + header_h,
        0.5,
        ops,
    );
    let mut y = y0 + header_h;
    for row in rows {
        let mut x = el.x;
        for (cell, &(c, w)) in row.cells.iter().zip(widths) {
            let col = &table.columns[c];
            let mut text_y = y + pad;
            let mut align = col.align;
            if let Some(sym) = &cell.bars {
                let dpi = cx.template.dpi;
                let bx = dpi.snap_mm(x + pad + (w - 2.0 * pad - sym.width_mm) / 2.0);
                let by = dpi.snap_mm(y + pad);
                ops.extend(barcode::to_ops(sym, bx, by, cx.template.page_h));
                text_y = by + sym.height_mm;
                align = Align::Center;
            }
            text_ops(
                cx,
                &cell.text.lines,
                cell.text.size_pt,
                x + pad,
                text_y,
                w - 2.0 * pad,
                align,
                false,
                false,
                ops,
            );
            x += w;
        }
        y += row.h;
        stroke_line(cx, el.x, y, el.x + el.w, y, 0.25, ops);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINI: &str = r#"
[page]
width_mm = 100
height_mm = 150

[[element]]
kind = "text"
name = "address"
x_mm = 5
y_mm = 5
w_mm = 40
h_mm = 10
size_pt = 12
min_pt = 6
text = "{{ recipient.address_masked }}"

[[element]]
kind = "code128"
x_mm = 5
y_mm = 30
w_mm = 80
h_mm = 20
hri = true
data = "{{ tracking_no }}"
"#;

    fn parse(src: &str) -> Result<Template, TemplateError> {
        Template::parse("t", "t.toml", src, Dpi::default())
    }

    #[test]
    fn a_minimal_template_loads() {
        let t = parse(MINI).unwrap();
        assert_eq!(t.page_mm(), (100.0, 150.0));
        assert_eq!(t.elements.len(), 2);
        assert_eq!(t.elements[0].label, "address");
    }

    #[test]
    fn unknown_fields_name_the_line_and_field() {
        let src = MINI.replace("min_pt = 6", "min_pt = 6\nsize = 3");
        let e = parse(&src).unwrap_err();
        assert_eq!(e.line, 15, "{e}");
        assert!(e.message.contains("unknown field `size`"), "{e}");
        assert_eq!(e.field, "size", "{e}");
        let e = parse(&MINI.replace("size_pt = 12", "size_pt = \"big\"")).unwrap_err();
        assert_eq!((e.line, e.field.as_str()), (13, "size_pt"), "{e}");
    }

    #[test]
    fn bad_minijinja_names_the_element_and_line() {
        let e = parse(&MINI.replace("{{ tracking_no }}", "{{ tracking_no }")).unwrap_err();
        assert_eq!(e.field, "element[1].data", "{e}");
        assert_eq!(e.line, 24, "{e}");
        assert!(e.message.contains("template syntax"), "{e}");
        let e = parse(&MINI.replace("recipient.address_masked", "recipient.adress")).unwrap_err();
        assert_eq!((e.field.as_str(), e.line), ("element[0].text", 15), "{e}");
        assert!(e.message.contains("recipient.adress"), "{e}");
        let e = parse(&MINI.replace("recipient.address_masked", "price")).unwrap_err();
        assert!(e.message.contains("`price`"), "{e}");
    }

    #[test]
    fn hide_prices_leaves_no_price_in_the_context() {
        let ctx = context::sample_context();
        let json = serde_json::to_string(&ctx).unwrap();
        assert!(json.contains("unit_price") && json.contains("\"total\""));
        let hidden = context::sample_context_hidden();
        let json = serde_json::to_string(&hidden).unwrap();
        for word in ["unit_price", "amount", "\"total\""] {
            assert!(!json.contains(word), "{word} in {json}");
        }
    }

    #[test]
    fn absent_optional_values_print_nothing() {
        let src = MINI.replace("recipient.address_masked", "memo.text }}{{ total");
        let t = parse(&src).unwrap();
        let mut order = context::sample_order();
        order.memos.clear();
        order.options.hide_prices = true;
        let sender = crate::render::Sender::default();
        let mut input = DocInput::new(&order, &sender, "店", "2026-11-11 09:00".into());
        input.tracking_no = Some("783100001234");
        let r = render(&t, &[input]).unwrap();
        assert_eq!(r.pages, 1);
        assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    }

    #[test]
    fn overflow_is_cut_to_the_box_and_warned() {
        let t = parse(&MINI.replace("h_mm = 10", "h_mm = 3")).unwrap();
        let order = context::sample_order();
        let sender = crate::render::Sender::default();
        let mut input = DocInput::new(&order, &sender, "店", "2026-11-11 09:00".into());
        input.tracking_no = Some("783100001234");
        let r = render(&t, &[input]).unwrap();
        assert_eq!(r.pages, 1);
        assert!(
            r.warnings
                .iter()
                .any(|(_, w)| w.contains("field address overflows its box")),
            "{:?}",
            r.warnings
        );
        assert!(r.pdf.starts_with(b"%PDF"));
    }
}
