//! Crates, modules and name resolution: which items are public, through
//! `pub mod`s and (glob) re-exports across `spool` and `spool-runtime`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use super::items::*;
use super::tokens::tokenize;
use super::Seen;

impl Crate {
    pub fn load(name: &'static str, root: &Path, read: &dyn Fn(&Path) -> Option<String>) -> Crate {
        let mut c = Crate {
            name,
            defs: Vec::new(),
            modules: Vec::new(),
        };
        let src = read(root).unwrap_or_else(|| panic!("cannot read {}", root.display()));
        let toks = tokenize(&src);
        let mut p = Parser { toks: &toks, i: 0 };
        let inner = p
            .attrs(true)
            .unwrap_or_else(|e| panic!("{}: {e}", root.display()));
        let items = p
            .items(toks.len(), Ctx::Module)
            .unwrap_or_else(|e| panic!("{}: {e}", root.display()));
        c.modules.push(Module::default());
        let def = c.push_def(Kind::Mod, name.to_string(), None, true, &inner, root, 1, 0);
        c.defs[def].module = Some(0);
        let dir = root.parent().unwrap().to_path_buf();
        c.place(0, items, root, &dir, read);
        c
    }

    #[allow(clippy::too_many_arguments)]
    pub fn push_def(
        &mut self,
        kind: Kind,
        name: String,
        owner: Option<String>,
        public: bool,
        attrs: &Attrs,
        file: &Path,
        line: usize,
        module: ModId,
    ) -> DefId {
        self.defs.push(Def {
            kind,
            name,
            owner,
            public,
            hidden: attrs.hidden,
            example: attrs.example(),
            file: file.to_path_buf(),
            line,
            children: Vec::new(),
            module: None,
            in_module: module,
        });
        self.defs.len() - 1
    }

    /// Puts `items` into module `m`, whose file is `file` and whose child
    /// modules' files live in `dir`.
    pub fn place(
        &mut self,
        m: ModId,
        items: Vec<Parsed>,
        file: &Path,
        dir: &Path,
        read: &dyn Fn(&Path) -> Option<String>,
    ) {
        for item in items {
            match item {
                Parsed::Skip => {}
                Parsed::Use(b) => self.modules[m].uses.extend(b),
                Parsed::Def {
                    kind,
                    name,
                    public,
                    attrs,
                    line,
                    children,
                } => {
                    let d = self.push_def(kind, name.clone(), None, public, &attrs, file, line, m);
                    for child in children {
                        if let Parsed::Def {
                            kind,
                            name: cname,
                            public,
                            attrs,
                            line,
                            ..
                        } = child
                        {
                            let c = self.push_def(
                                kind,
                                cname,
                                Some(name.clone()),
                                public,
                                &attrs,
                                file,
                                line,
                                m,
                            );
                            self.defs[d].children.push(c);
                        }
                    }
                    // Exported macros live at the crate root.
                    let home = if kind == Kind::Macro { 0 } else { m };
                    self.modules[home].defs.push(d);
                }
                Parsed::Impl {
                    self_path,
                    trait_impl,
                    hidden,
                    items,
                } => {
                    if self_path.is_empty() {
                        // A macro invocation's items.
                        self.place(m, items, file, dir, read);
                        continue;
                    }
                    if trait_impl || hidden {
                        continue;
                    }
                    let owner = self_path.last().cloned();
                    let mut methods = Vec::new();
                    self.impl_items(m, items, &owner, file, &mut methods);
                    self.modules[m].impls.push((self_path, methods));
                }
                Parsed::Mod {
                    name,
                    public,
                    attrs,
                    line,
                    body,
                } => {
                    let child = self.modules.len();
                    self.modules.push(Module {
                        krate: 0,
                        parent: Some(m),
                        ..Module::default()
                    });
                    let (inner, items, child_file, child_dir) = match body {
                        Some((inner, items)) => (inner, items, file.to_path_buf(), dir.join(&name)),
                        None => {
                            let candidates = match &attrs.path {
                                Some(p) => vec![file.parent().unwrap().join(p)],
                                None => vec![
                                    dir.join(format!("{name}.rs")),
                                    dir.join(&name).join("mod.rs"),
                                ],
                            };
                            let (path, src) = candidates
                                .iter()
                                .find_map(|p| read(p).map(|s| (p.clone(), s)))
                                .unwrap_or_else(|| {
                                    panic!("{}: no file for `mod {name}`", file.display())
                                });
                            let toks = tokenize(&src);
                            let mut p = Parser { toks: &toks, i: 0 };
                            let fail = |e: String| -> ! { panic!("{}: {e}", path.display()) };
                            let inner = p.attrs(true).unwrap_or_else(|e| fail(e));
                            let items =
                                p.items(toks.len(), Ctx::Module).unwrap_or_else(|e| fail(e));
                            let child_dir =
                                if path.file_name().unwrap() == "mod.rs" || attrs.path.is_some() {
                                    path.parent().unwrap().to_path_buf()
                                } else {
                                    path.with_extension("")
                                };
                            (inner, items, path, child_dir)
                        }
                    };
                    let mut all = attrs;
                    all.docs.push_str(&inner.docs);
                    all.hidden |= inner.hidden;
                    let d =
                        self.push_def(Kind::Mod, name, None, public, &all, &child_file, line, m);
                    self.defs[d].module = Some(child);
                    self.modules[m].defs.push(d);
                    self.place(child, items, &child_file, &child_dir, read);
                }
            }
        }
    }

    pub fn impl_items(
        &mut self,
        m: ModId,
        items: Vec<Parsed>,
        owner: &Option<String>,
        file: &Path,
        out: &mut Vec<DefId>,
    ) {
        for item in items {
            match item {
                Parsed::Def {
                    kind,
                    name,
                    public,
                    attrs,
                    line,
                    ..
                } => {
                    out.push(self.push_def(
                        kind,
                        name,
                        owner.clone(),
                        public,
                        &attrs,
                        file,
                        line,
                        m,
                    ));
                }
                Parsed::Impl {
                    self_path, items, ..
                } if self_path.is_empty() => self.impl_items(m, items, owner, file, out),
                _ => {}
            }
        }
    }
}

/// A definition in one of the crates.
pub type Global = (usize, DefId);

pub struct World {
    pub crates: Vec<Crate>,
}

impl World {
    pub fn new(mut crates: Vec<Crate>) -> World {
        for (k, c) in crates.iter_mut().enumerate() {
            for m in &mut c.modules {
                m.krate = k;
            }
        }
        World { crates }
    }

    pub fn def(&self, g: Global) -> &Def {
        &self.crates[g.0].defs[g.1]
    }

    /// Resolves `path` as written in module `m` of crate `k`: every
    /// definition it names (a name can be a type and a function at once).
    pub fn resolve(
        &self,
        k: usize,
        m: ModId,
        path: &[String],
        seen: &mut HashSet<(usize, ModId, Vec<String>)>,
    ) -> Vec<Global> {
        // `seen` holds the resolutions under way: a cycle of `use`s ends.
        let key = (k, m, path.to_vec());
        if path.is_empty() || !seen.insert(key.clone()) {
            return vec![];
        }
        let out = self.resolve_uncached(k, m, path, seen);
        seen.remove(&key);
        out
    }

    pub fn resolve_uncached(
        &self,
        k: usize,
        m: ModId,
        path: &[String],
        seen: &mut HashSet<(usize, ModId, Vec<String>)>,
    ) -> Vec<Global> {
        let (first, rest) = (&path[0], &path[1..]);
        let start = match first.as_str() {
            "crate" => Some((k, 0)),
            "self" => Some((k, m)),
            "super" => self.crates[k].modules[m].parent.map(|p| (k, p)),
            _ => None,
        };
        let firsts: Vec<Global> = match start {
            Some((ck, cm)) => {
                if rest.is_empty() {
                    return vec![];
                }
                return self.resolve_in(ck, cm, rest, seen);
            }
            None => {
                let local = self.lookup(k, m, first, seen);
                if !local.is_empty() {
                    local
                } else if let Some(ck) = self.crates.iter().position(|c| c.name == first) {
                    return if rest.is_empty() {
                        vec![]
                    } else {
                        self.resolve_in(ck, 0, rest, seen)
                    };
                } else {
                    vec![]
                }
            }
        };
        if rest.is_empty() {
            return firsts;
        }
        firsts
            .into_iter()
            .filter_map(|g| self.def(g).module.map(|cm| (g.0, cm)))
            .flat_map(|(ck, cm)| self.resolve_in(ck, cm, rest, seen))
            .collect()
    }

    /// Resolves `path` relative to module `m` (its names, not its scope).
    pub fn resolve_in(
        &self,
        k: usize,
        m: ModId,
        path: &[String],
        seen: &mut HashSet<(usize, ModId, Vec<String>)>,
    ) -> Vec<Global> {
        let mut here = vec![(k, m)];
        for (n, seg) in path.iter().enumerate() {
            let last = n + 1 == path.len();
            let mut next = Vec::new();
            for (ck, cm) in here {
                let found = if seg == "super" {
                    self.crates[ck].modules[cm]
                        .parent
                        .map(|p| self.mod_def(ck, p))
                        .into_iter()
                        .collect()
                } else {
                    self.lookup(ck, cm, seg, seen)
                };
                next.extend(found);
            }
            if last {
                return next;
            }
            here = next
                .into_iter()
                .filter_map(|g| self.def(g).module.map(|cm| (g.0, cm)))
                .collect();
        }
        vec![]
    }

    pub fn mod_def(&self, k: usize, m: ModId) -> Global {
        (
            k,
            self.crates[k]
                .defs
                .iter()
                .position(|d| d.module == Some(m))
                .unwrap(),
        )
    }

    /// The definitions module `m` binds to `name`: its own items, its
    /// `use`s, then its glob imports.
    pub fn lookup(
        &self,
        k: usize,
        m: ModId,
        name: &str,
        seen: &mut HashSet<(usize, ModId, Vec<String>)>,
    ) -> Vec<Global> {
        let module = &self.crates[k].modules[m];
        let mut out: Vec<Global> = module
            .defs
            .iter()
            .filter(|&&d| self.crates[k].defs[d].name == name)
            .map(|&d| (k, d))
            .collect();
        for u in &module.uses {
            if u.name.as_deref() == Some(name) {
                out.extend(self.resolve(k, m, &u.path, seen));
            }
        }
        if out.is_empty() {
            for u in module.uses.iter().filter(|u| u.name.is_none()) {
                for g in self.resolve(k, m, &u.path, seen) {
                    if let Some(gm) = self.def(g).module {
                        out.extend(
                            self.exports(g.0, gm, seen)
                                .into_iter()
                                .filter(|(n, _)| n == name)
                                .map(|(_, g)| g),
                        );
                    }
                }
            }
        }
        out
    }

    /// The public names of module `m` and what they name.
    pub fn exports(
        &self,
        k: usize,
        m: ModId,
        seen: &mut HashSet<(usize, ModId, Vec<String>)>,
    ) -> Vec<(String, Global)> {
        let module = &self.crates[k].modules[m];
        let mut out = Vec::new();
        for &d in &module.defs {
            let def = &self.crates[k].defs[d];
            if def.public && !def.hidden {
                out.push((def.name.clone(), (k, d)));
            }
        }
        for u in module.uses.iter().filter(|u| u.public && !u.hidden) {
            let targets = self.resolve(k, m, &u.path, seen);
            match &u.name {
                Some(name) => out.extend(targets.into_iter().map(|g| (name.clone(), g))),
                None => {
                    for g in targets {
                        if let Some(gm) = self.def(g).module {
                            out.extend(self.exports(g.0, gm, seen));
                        }
                    }
                }
            }
        }
        out
    }

    /// Every public item of crate `k`, as described at the top of this
    /// file, with how rustdoc's coverage sees it.
    pub fn public_items(&self, k: usize) -> BTreeMap<Global, Seen> {
        let mut items: BTreeMap<Global, Seen> = BTreeMap::new();
        let mut walked: HashSet<(usize, ModId)> = HashSet::new();
        let mut visited: HashMap<Global, bool> = HashMap::new();
        let mut stack: Vec<(Global, bool)> = vec![(self.mod_def(k, 0), true)];
        while let Some((g, by_path)) = stack.pop() {
            if visited.get(&g).is_some_and(|&before| before || !by_path) {
                continue;
            }
            visited.insert(g, by_path);
            let def = self.def(g);
            let seen = match (g.0 == k, by_path) {
                (true, true) => Seen::Direct,
                (true, false) => Seen::Inlined,
                (false, _) => Seen::Not,
            };
            items.insert(g, seen);
            for &c in &def.children {
                let child = &self.crates[g.0].defs[c];
                if (child.public || child.kind == Kind::Variant) && !child.hidden {
                    stack.push(((g.0, c), by_path));
                }
            }
            if let Some(m) = def.module {
                if by_path {
                    walked.insert((g.0, m));
                }
                let mut seen = HashSet::new();
                for (_, e) in self.exports(g.0, m, &mut seen) {
                    // An item reached through its own module's path is
                    // "walked" by rustdoc; one reached by a re-export from
                    // a private module is inlined.
                    let own = self.def(e).in_module == m && e.0 == g.0;
                    stack.push((e, by_path && own));
                }
            }
        }
        // Methods of inherent impls of public types.
        let mut methods = Vec::new();
        for (ck, c) in self.crates.iter().enumerate() {
            for (m, module) in c.modules.iter().enumerate() {
                for (path, defs) in &module.impls {
                    let targets = self.resolve(ck, m, path, &mut HashSet::new());
                    if targets.iter().any(|t| items.contains_key(t)) {
                        for &d in defs {
                            let def = &c.defs[d];
                            if def.public && !def.hidden {
                                let seen = if ck == k && walked.contains(&(ck, m)) {
                                    Seen::Direct
                                } else {
                                    Seen::Not
                                };
                                methods.push(((ck, d), seen));
                            }
                        }
                    }
                }
            }
        }
        items.extend(methods);
        items
    }
}
