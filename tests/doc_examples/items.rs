//! Items of one source file: a parser over tokens that keeps what the
//! count needs (kind, name, visibility, docs, cfg, children).

use std::path::PathBuf;

use super::tokens::{Tok, Token};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Mod,
    Fn,
    Method,
    Struct,
    Enum,
    Union,
    Trait,
    TypeAlias,
    Const,
    Static,
    Macro,
    Field,
    Variant,
    AssocType,
    AssocConst,
}

impl Kind {
    /// Whether rustdoc's coverage expects an example on this kind of item.
    pub fn needs_example(self) -> bool {
        matches!(
            self,
            Kind::Fn
                | Kind::Method
                | Kind::Struct
                | Kind::Enum
                | Kind::Union
                | Kind::Trait
                | Kind::Macro
        )
    }

    pub fn word(self) -> &'static str {
        match self {
            Kind::Mod => "mod",
            Kind::Fn => "fn",
            Kind::Method => "method",
            Kind::Struct => "struct",
            Kind::Enum => "enum",
            Kind::Union => "union",
            Kind::Trait => "trait",
            Kind::TypeAlias => "type",
            Kind::Const => "const",
            Kind::Static => "static",
            Kind::Macro => "macro",
            Kind::Field => "field",
            Kind::Variant => "variant",
            Kind::AssocType => "associated type",
            Kind::AssocConst => "associated const",
        }
    }
}

/// One `use` binding: `path` bound as `name`, or every public name of the
/// module at `path` for a glob.
#[derive(Clone, Debug)]
pub struct UseBinding {
    pub path: Vec<String>,
    pub name: Option<String>,
    pub public: bool,
    pub hidden: bool,
}

pub type DefId = usize;
pub type ModId = usize;

#[derive(Debug)]
pub struct Def {
    pub kind: Kind,
    pub name: String,
    /// The type or trait a method, field or variant belongs to.
    pub owner: Option<String>,
    pub public: bool,
    pub hidden: bool,
    pub example: bool,
    pub file: PathBuf,
    pub line: usize,
    /// Fields, variants and trait items.
    pub children: Vec<DefId>,
    /// For `Kind::Mod`, the module.
    pub module: Option<ModId>,
    /// For methods: the module of the impl block.
    pub in_module: ModId,
}

#[derive(Debug, Default)]
pub struct Module {
    pub krate: usize,
    pub parent: Option<ModId>,
    pub defs: Vec<DefId>,
    pub uses: Vec<UseBinding>,
    /// Inherent impls: the self type's path and the methods.
    pub impls: Vec<(Vec<String>, Vec<DefId>)>,
}

pub struct Crate {
    pub name: &'static str,
    pub defs: Vec<Def>,
    pub modules: Vec<Module>,
}

/// Parser state over one file's tokens.
pub struct Parser<'a> {
    pub toks: &'a [Token],
    pub i: usize,
}

/// Attributes and docs gathered before an item.
#[derive(Default)]
pub struct Attrs {
    pub docs: String,
    pub cfg_false: bool,
    pub hidden: bool,
    pub macro_export: bool,
    pub path: Option<String>,
}

impl Attrs {
    pub fn example(&self) -> bool {
        has_example(&self.docs)
    }
}

#[derive(Clone, Copy, PartialEq)]
pub enum Ctx {
    Module,
    Impl,
    Trait,
}

/// A parsed item before it is placed in the crate.
pub enum Parsed {
    Def {
        kind: Kind,
        name: String,
        public: bool,
        attrs: Attrs,
        line: usize,
        children: Vec<Parsed>,
    },
    Mod {
        name: String,
        public: bool,
        attrs: Attrs,
        line: usize,
        body: Option<(Attrs, Vec<Parsed>)>,
    },
    Use(Vec<UseBinding>),
    Impl {
        self_path: Vec<String>,
        trait_impl: bool,
        hidden: bool,
        items: Vec<Parsed>,
    },
    Skip,
}

impl Parser<'_> {
    pub fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.i).map(|t| &t.tok)
    }
    pub fn peek_at(&self, k: usize) -> Option<&Tok> {
        self.toks.get(self.i + k).map(|t| &t.tok)
    }
    pub fn line(&self) -> usize {
        self.toks.get(self.i).map_or(0, |t| t.line)
    }
    pub fn is_ident(&self, k: usize, word: &str) -> bool {
        matches!(self.peek_at(k), Some(Tok::Ident(w)) if w == word)
    }
    pub fn is_punct(&self, k: usize, p: &str) -> bool {
        matches!(self.peek_at(k), Some(Tok::Punct(q)) if *q == p)
    }
    pub fn err<T>(&self, what: &str) -> Result<T, String> {
        Err(format!(
            "line {}: {what}, found {:?}",
            self.line(),
            self.peek()
        ))
    }
    pub fn ident(&mut self) -> Result<String, String> {
        match self.peek() {
            Some(Tok::Ident(w)) => {
                let w = w.clone();
                self.i += 1;
                Ok(w)
            }
            _ => self.err("expected a name"),
        }
    }
    /// Index just past the group opening at `self.i`.
    pub fn skip_group(&mut self) -> Result<(), String> {
        if !matches!(self.peek(), Some(Tok::Open(_))) {
            return self.err("expected a group");
        }
        let mut depth = 0usize;
        loop {
            match self.peek() {
                Some(Tok::Open(_)) => depth += 1,
                Some(Tok::Close(_)) => {
                    depth -= 1;
                    if depth == 0 {
                        self.i += 1;
                        return Ok(());
                    }
                }
                None => return self.err("unclosed group"),
                _ => {}
            }
            self.i += 1;
        }
    }
    /// The index of the token closing the group opening at `self.i`.
    pub fn group_end(&self) -> Result<usize, String> {
        let mut p = Parser {
            toks: self.toks,
            i: self.i,
        };
        p.skip_group()?;
        Ok(p.i - 1)
    }
    /// Skips tokens (whole groups at a time) until one of `stops` at angle
    /// depth 0; a `{` also stops. Returns without consuming the stop.
    pub fn skip_until(&mut self, stops: &[&str]) -> Result<(), String> {
        self.skip_until_paren(stops, false)
    }

    /// As `skip_until`, also stopping at a `(` when `paren`. After a `=`
    /// (an initialiser or default) `<` and `>` are comparisons, not angles.
    pub fn skip_until_paren(&mut self, stops: &[&str], paren: bool) -> Result<(), String> {
        let mut angle = 0i32;
        let mut expr = false;
        loop {
            match self.peek() {
                None => return self.err("unexpected end"),
                Some(Tok::Open('{')) if angle <= 0 => return Ok(()),
                Some(Tok::Open('(')) if angle <= 0 && paren => return Ok(()),
                Some(Tok::Punct("=")) if angle <= 0 => expr = true,
                Some(Tok::Open(_)) => {
                    self.skip_group()?;
                    continue;
                }
                Some(Tok::Close(_)) => return Ok(()),
                Some(Tok::Punct("<")) if !expr => angle += 1,
                Some(Tok::Punct(">")) if !expr => angle -= 1,
                Some(Tok::Punct(p)) if angle <= 0 && stops.contains(p) => return Ok(()),
                _ => {}
            }
            self.i += 1;
        }
    }

    pub fn attrs(&mut self, inner: bool) -> Result<Attrs, String> {
        let mut a = Attrs::default();
        loop {
            match self.peek() {
                Some(Tok::Doc { inner: i, text }) if *i == inner => {
                    a.docs.push_str(text);
                    a.docs.push('\n');
                    self.i += 1;
                }
                Some(Tok::Punct("#")) if inner == self.is_punct(1, "!") => {
                    self.i += if inner { 2 } else { 1 };
                    let end = self.group_end()?;
                    let body = &self.toks[self.i + 1..end];
                    self.attr(&mut a, body);
                    self.i = end + 1;
                }
                _ => return Ok(a),
            }
        }
    }

    pub fn attr(&self, a: &mut Attrs, body: &[Token]) {
        let word = |k: usize| match body.get(k).map(|t| &t.tok) {
            Some(Tok::Ident(w)) => w.as_str(),
            _ => "",
        };
        match word(0) {
            "doc" => match body.get(1).map(|t| &t.tok) {
                Some(Tok::Punct("=")) => {
                    if let Some(Tok::Str(s)) = body.get(2).map(|t| &t.tok) {
                        a.docs.push_str(s);
                        a.docs.push('\n');
                    }
                }
                Some(Tok::Open('(')) if word(2) == "hidden" => a.hidden = true,
                _ => {}
            },
            "cfg" => {
                let mut k = 2;
                if !eval_cfg(body, &mut k) {
                    a.cfg_false = true;
                }
            }
            "macro_export" => a.macro_export = true,
            "path" => {
                if let Some(Tok::Str(s)) = body.get(2).map(|t| &t.tok) {
                    a.path = Some(s.clone());
                }
            }
            _ => {}
        }
    }

    /// `pub` → true; `pub(…)` and nothing → false.
    pub fn visibility(&mut self) -> Result<bool, String> {
        if !self.is_ident(0, "pub") {
            return Ok(false);
        }
        self.i += 1;
        if matches!(self.peek(), Some(Tok::Open('('))) {
            self.skip_group()?;
            return Ok(false);
        }
        Ok(true)
    }

    pub fn items(&mut self, end: usize, ctx: Ctx) -> Result<Vec<Parsed>, String> {
        let mut out = Vec::new();
        while self.i < end {
            if matches!(self.peek(), Some(Tok::Punct(";"))) {
                self.i += 1;
                continue;
            }
            out.push(self.item(ctx)?);
        }
        Ok(out)
    }

    pub fn item(&mut self, ctx: Ctx) -> Result<Parsed, String> {
        let attrs = self.attrs(false)?;
        let line = self.line();
        let mut public = self.visibility()? || ctx == Ctx::Trait;
        // Qualifiers.
        while let Some(Tok::Ident(w)) = self.peek() {
            match w.as_str() {
                "default" | "async" | "unsafe" | "auto" | "safe" if !self.is_punct(1, "!") => {
                    self.i += 1
                }
                "const"
                    if self.is_ident(1, "fn")
                        || self.is_ident(1, "unsafe")
                        || self.is_ident(1, "async")
                        || self.is_ident(1, "extern") =>
                {
                    self.i += 1
                }
                "extern"
                    if matches!(self.peek_at(1), Some(Tok::Str(_)))
                        && !matches!(self.peek_at(2), Some(Tok::Open('{'))) =>
                {
                    self.i += 2
                }
                "extern" if self.is_ident(1, "fn") => self.i += 1,
                _ => break,
            }
        }
        let keyword = match self.peek() {
            Some(Tok::Ident(w)) => w.clone(),
            Some(Tok::Punct("::")) => String::new(), // `::path::to::macro!`
            _ => return self.err("expected an item"),
        };
        let skip = attrs.cfg_false;
        let def = |kind, name, public, attrs, children| Parsed::Def {
            kind,
            name,
            public,
            attrs,
            line,
            children,
        };
        let parsed = match keyword.as_str() {
            "fn" => {
                self.i += 1;
                let name = self.ident()?;
                self.skip_until(&[";"])?;
                if matches!(self.peek(), Some(Tok::Open('{'))) {
                    self.skip_group()?;
                } else {
                    self.i += 1;
                }
                let kind = if ctx == Ctx::Module {
                    Kind::Fn
                } else {
                    Kind::Method
                };
                def(kind, name, public, attrs, vec![])
            }
            "struct" | "union" => {
                self.i += 1;
                let name = self.ident()?;
                let kind = if keyword == "struct" {
                    Kind::Struct
                } else {
                    Kind::Union
                };
                let mut fields = Vec::new();
                let mut tuple = false;
                loop {
                    self.skip_until_paren(&[";"], !tuple)?;
                    match self.peek() {
                        Some(Tok::Open('{')) => {
                            fields = self.fields(false)?;
                            break;
                        }
                        Some(Tok::Open('(')) => {
                            fields = self.fields(true)?;
                            tuple = true;
                        }
                        _ => {
                            self.i += 1; // `;`
                            break;
                        }
                    }
                }
                def(kind, name, public, attrs, fields)
            }
            "enum" => {
                self.i += 1;
                let name = self.ident()?;
                self.skip_until(&[])?;
                let end = self.group_end()?;
                self.i += 1;
                let mut variants = Vec::new();
                while self.i < end {
                    let a = self.attrs(false)?;
                    let line = self.line();
                    let vname = self.ident()?;
                    if matches!(self.peek(), Some(Tok::Open(_))) {
                        self.skip_group()?;
                    }
                    while self.i < end && !self.is_punct(0, ",") {
                        if matches!(self.peek(), Some(Tok::Open(_))) {
                            self.skip_group()?;
                        } else {
                            self.i += 1;
                        }
                    }
                    self.i += usize::from(self.i < end);
                    if !a.cfg_false {
                        variants.push(Parsed::Def {
                            kind: Kind::Variant,
                            name: vname,
                            public: true,
                            attrs: a,
                            line,
                            children: vec![],
                        });
                    }
                }
                self.i = end + 1;
                def(Kind::Enum, name, public, attrs, variants)
            }
            "trait" => {
                self.i += 1;
                let name = self.ident()?;
                self.skip_until(&[";"])?;
                let end = self.group_end()?;
                self.i += 1;
                let items = self.items(end, Ctx::Trait)?;
                self.i = end + 1;
                let children = items
                    .into_iter()
                    .filter(|p| matches!(p, Parsed::Def { .. }))
                    .collect();
                def(Kind::Trait, name, public, attrs, children)
            }
            "impl" => {
                self.i += 1;
                let header = self.i;
                self.skip_until(&[])?;
                let (self_path, trait_impl) = impl_header(&self.toks[header..self.i]);
                let end = self.group_end()?;
                self.i += 1;
                let items = self.items(end, Ctx::Impl)?;
                self.i = end + 1;
                if skip {
                    return Ok(Parsed::Skip);
                }
                return Ok(Parsed::Impl {
                    self_path,
                    trait_impl,
                    hidden: attrs.hidden,
                    items,
                });
            }
            "type" | "const" | "static" => {
                self.i += 1;
                if self.is_ident(0, "mut") {
                    self.i += 1;
                }
                let name = self.ident()?;
                loop {
                    self.skip_until(&[";"])?;
                    match self.peek() {
                        Some(Tok::Open('{')) => self.skip_group()?,
                        _ => break,
                    }
                }
                self.i += 1;
                let kind = match (keyword.as_str(), ctx) {
                    ("type", Ctx::Module) => Kind::TypeAlias,
                    ("type", _) => Kind::AssocType,
                    ("const", Ctx::Module) => Kind::Const,
                    ("const", _) => Kind::AssocConst,
                    _ => Kind::Static,
                };
                def(kind, name, public, attrs, vec![])
            }
            "use" => {
                self.i += 1;
                let start = self.i;
                while !self.is_punct(0, ";") {
                    self.i += 1;
                }
                let mut bindings = Vec::new();
                use_tree(&self.toks[start..self.i], &mut Vec::new(), &mut bindings);
                self.i += 1;
                for b in &mut bindings {
                    b.public = public;
                    b.hidden = attrs.hidden;
                }
                if skip {
                    return Ok(Parsed::Skip);
                }
                return Ok(Parsed::Use(bindings));
            }
            "mod" => {
                self.i += 1;
                let name = self.ident()?;
                let body = if matches!(self.peek(), Some(Tok::Open('{'))) {
                    let end = self.group_end()?;
                    self.i += 1;
                    let inner = self.attrs(true)?;
                    let items = self.items(end, Ctx::Module)?;
                    self.i = end + 1;
                    Some((inner, items))
                } else {
                    self.i += 1;
                    None
                };
                if skip {
                    return Ok(Parsed::Skip);
                }
                return Ok(Parsed::Mod {
                    name,
                    public,
                    attrs,
                    line,
                    body,
                });
            }
            "extern" => {
                // `extern crate …;` or an `extern "C" { … }` block.
                self.skip_until(&[";"])?;
                if matches!(self.peek(), Some(Tok::Open('{'))) {
                    self.skip_group()?;
                } else {
                    self.i += 1;
                }
                return Ok(Parsed::Skip);
            }
            "macro_rules" if self.is_punct(1, "!") => {
                self.i += 2;
                let name = self.ident()?;
                let brace = matches!(self.peek(), Some(Tok::Open('{')));
                self.skip_group()?;
                if !brace {
                    self.i += 1;
                }
                public = attrs.macro_export;
                def(Kind::Macro, name, public, attrs, vec![])
            }
            _ => {
                // A macro invocation: `path!(…);`, `path! { … }`. Its body
                // counts when it parses as items (`const_fn! { pub fn … }`).
                if self.is_punct(0, "::") {
                    self.i += 1;
                }
                while matches!(self.peek(), Some(Tok::Ident(_))) && self.is_punct(1, "::") {
                    self.i += 2;
                }
                self.ident()?;
                if !self.is_punct(0, "!") {
                    return self.err("expected an item");
                }
                self.i += 1;
                if matches!(self.peek(), Some(Tok::Ident(_))) {
                    self.i += 1;
                }
                let end = self.group_end()?;
                let brace = matches!(self.peek(), Some(Tok::Open('{')));
                let mut inner = Parser {
                    toks: &self.toks[..end],
                    i: self.i + 1,
                };
                let items = inner.items(end, ctx);
                self.i = end + 1;
                if !brace && self.is_punct(0, ";") {
                    self.i += 1;
                }
                return Ok(match items {
                    Ok(items) if !skip => Parsed::Impl {
                        self_path: vec![],
                        trait_impl: false,
                        hidden: false,
                        items,
                    },
                    _ => Parsed::Skip,
                });
            }
        };
        Ok(if skip { Parsed::Skip } else { parsed })
    }

    /// Fields of a struct body (`{ … }`, or `( … )` when `tuple`).
    pub fn fields(&mut self, tuple: bool) -> Result<Vec<Parsed>, String> {
        let end = self.group_end()?;
        self.i += 1;
        let mut out = Vec::new();
        let mut n = 0;
        while self.i < end {
            let a = self.attrs(false)?;
            let line = self.line();
            let public = self.visibility()?;
            let name = if tuple {
                n += 1;
                (n - 1).to_string()
            } else {
                let name = self.ident()?;
                self.i += 1; // `:`
                name
            };
            self.skip_until(&[","])?;
            if matches!(self.peek(), Some(Tok::Open('{'))) {
                return self.err("a field's type");
            }
            self.i += usize::from(self.i < end);
            if !a.cfg_false {
                out.push(Parsed::Def {
                    kind: Kind::Field,
                    name,
                    public,
                    attrs: a,
                    line,
                    children: vec![],
                });
            }
        }
        self.i = end + 1;
        Ok(out)
    }
}

/// The self type's path and whether it is a trait impl, from the tokens
/// between `impl` and the body.
pub fn impl_header(toks: &[Token]) -> (Vec<String>, bool) {
    let mut k = 0;
    let mut angle = 0;
    if matches!(toks.first().map(|t| &t.tok), Some(Tok::Punct("<"))) {
        loop {
            match &toks[k].tok {
                Tok::Punct("<") => angle += 1,
                Tok::Punct(">") => angle -= 1,
                _ => {}
            }
            k += 1;
            if angle == 0 {
                break;
            }
        }
    }
    let rest = &toks[k..];
    let stop = rest
        .iter()
        .position(|t| t.tok == Tok::Ident("where".into()))
        .unwrap_or(rest.len());
    let rest = &rest[..stop];
    let mut for_at = None;
    for (j, t) in rest.iter().enumerate() {
        match &t.tok {
            Tok::Punct("<") => angle += 1,
            Tok::Punct(">") => angle -= 1,
            Tok::Ident(w)
                if w == "for"
                    && angle == 0
                    && rest.get(j + 1).map(|t| &t.tok) != Some(&Tok::Punct("<")) =>
            {
                for_at = Some(j);
                break;
            }
            _ => {}
        }
    }
    let ty = match for_at {
        Some(j) => &rest[j + 1..],
        None => rest,
    };
    let mut path = Vec::new();
    for t in ty {
        match &t.tok {
            Tok::Ident(w) if w == "mut" || w == "dyn" => {}
            Tok::Ident(w) => path.push(w.clone()),
            Tok::Punct("&") | Tok::Punct("::") | Tok::Lifetime => {}
            _ => break,
        }
    }
    (path, for_at.is_some())
}

/// Expands a `use` tree into bindings.
pub fn use_tree(toks: &[Token], prefix: &mut Vec<String>, out: &mut Vec<UseBinding>) {
    let base = prefix.len();
    let mut k = 0;
    let binding = |path: Vec<String>, name| UseBinding {
        path,
        name,
        public: false,
        hidden: false,
    };
    while k < toks.len() {
        match &toks[k].tok {
            Tok::Ident(w) if w == "as" => {
                if let Some(Tok::Ident(alias)) = toks.get(k + 1).map(|t| &t.tok) {
                    if alias != "_" {
                        out.push(binding(prefix.clone(), Some(alias.clone())));
                    }
                }
                prefix.truncate(base);
                return;
            }
            Tok::Ident(w) => prefix.push(w.clone()),
            Tok::Punct("::") => {}
            Tok::Punct("*") => {
                out.push(binding(prefix.clone(), None));
                prefix.truncate(base);
                return;
            }
            Tok::Open('{') => {
                // Split the group's top level at commas.
                let mut depth = 0;
                let mut from = k + 1;
                for j in k + 1..toks.len() {
                    match &toks[j].tok {
                        Tok::Open(_) => depth += 1,
                        Tok::Close(_) if depth > 0 => depth -= 1,
                        Tok::Close(_) | Tok::Punct(",") if depth == 0 => {
                            if from < j {
                                use_tree(&toks[from..j], prefix, out);
                            }
                            from = j + 1;
                            if matches!(toks[j].tok, Tok::Close(_)) {
                                break;
                            }
                        }
                        _ => {}
                    }
                }
                prefix.truncate(base);
                return;
            }
            _ => {}
        }
        k += 1;
    }
    if prefix.last().map(String::as_str) == Some("self") {
        prefix.pop();
    }
    if let Some(last) = prefix.last() {
        out.push(binding(prefix.clone(), Some(last.clone())));
    }
    prefix.truncate(base);
}

/// Evaluates the cfg predicate at `toks[*k]` as `cargo doc` sees it on
/// Linux without features, advancing `k` past it.
pub fn eval_cfg(toks: &[Token], k: &mut usize) -> bool {
    let word = match toks.get(*k).map(|t| &t.tok) {
        Some(Tok::Ident(w)) => w.clone(),
        _ => return true,
    };
    *k += 1;
    match toks.get(*k).map(|t| &t.tok) {
        Some(Tok::Open('(')) => {
            *k += 1;
            let mut values = Vec::new();
            while !matches!(toks.get(*k).map(|t| &t.tok), Some(Tok::Close(_)) | None) {
                values.push(eval_cfg(toks, k));
                if matches!(toks.get(*k).map(|t| &t.tok), Some(Tok::Punct(","))) {
                    *k += 1;
                }
            }
            *k += 1;
            match word.as_str() {
                "all" => values.iter().all(|v| *v),
                "any" => values.iter().any(|v| *v),
                "not" => !values.first().copied().unwrap_or(false),
                _ => false,
            }
        }
        Some(Tok::Punct("=")) => {
            let value = match toks.get(*k + 1).map(|t| &t.tok) {
                Some(Tok::Str(s)) => s.clone(),
                _ => String::new(),
            };
            *k += 2;
            matches!(
                (word.as_str(), value.as_str()),
                ("target_os", "linux") | ("target_family", "unix") | ("panic", "unwind")
            )
        }
        _ => matches!(word.as_str(), "unix" | "doc" | "debug_assertions"),
    }
}

/// Whether markdown `docs` hold a fenced code block that rustdoc runs (or
/// compiles) as a doctest: Rust by its language string, not `ignore`d.
pub fn has_example(docs: &str) -> bool {
    let mut open: Option<(char, usize)> = None;
    for line in docs.lines() {
        let t = line.trim_start();
        let fence = |t: &str| {
            let ch = t.chars().next().filter(|c| *c == '`' || *c == '~')?;
            let n = t.chars().take_while(|c| *c == ch).count();
            (n >= 3).then_some((ch, n))
        };
        match open {
            Some((ch, n)) => {
                if let Some((c, m)) = fence(t) {
                    if c == ch && m >= n && t[m..].trim().is_empty() {
                        open = None;
                    }
                }
            }
            None => {
                if let Some((ch, n)) = fence(t) {
                    if rust_test(&t[n..]) {
                        return true;
                    }
                    open = Some((ch, n));
                }
            }
        }
    }
    false
}

/// rustdoc's reading of a code block's language string: Rust unless it
/// names another language; `ignore` keeps it from running.
pub fn rust_test(info: &str) -> bool {
    let mut rust = false;
    let mut other = false;
    for word in info
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|w| !w.is_empty())
    {
        let word = word.trim_matches(|c| c == '{' || c == '}');
        match word {
            "rust" => rust = true,
            w if w == "ignore" || w.starts_with("ignore-") => return false,
            "should_panic" | "no_run" | "compile_fail" | "test_harness" | "standalone_crate" => {}
            w if w.starts_with("edition") || w.starts_with('.') || w.starts_with("class=") => {}
            w if w.len() == 5
                && w.starts_with('E')
                && w[1..].chars().all(|c| c.is_ascii_digit()) => {}
            _ => other = true,
        }
    }
    rust || !other
}
