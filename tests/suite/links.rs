//! Every link in the repository's Markdown files resolves: relative links
//! `[text](path)` point at a file or directory that exists, and every path
//! written in backticks (`runtime/src/park.rs`) names one that exists,
//! relative to the repository root or to the Markdown file's own
//! directory. A design document that points at a file which moved or never
//! existed sends a reader nowhere.

use std::path::{Path, PathBuf};

/// The Markdown files of the repository, outside build output and `.git`.
fn markdown_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy();
        if path.is_dir() {
            if !name.starts_with('.') && name != "target" {
                markdown_files(&path, out);
            }
        } else if name.ends_with(".md") {
            out.push(path);
        }
    }
}

/// The targets of inline links `[text](target)` in `text`.
fn link_targets(text: &str) -> Vec<&str> {
    let mut targets = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("](") {
        let after = &rest[at + 2..];
        let Some(end) = after.find(')') else { break };
        targets.push(&after[..end]);
        rest = &after[end..];
    }
    targets
}

/// Repository paths written in backticks: a word with a `/` and a file
/// extension, such as `runtime/src/park.rs` or `docs/design.md`.
fn backticked_paths(text: &str) -> Vec<&str> {
    let mut paths = Vec::new();
    for (i, piece) in text.split('`').enumerate() {
        let is_code = i % 2 == 1;
        let looks_like_path = piece.contains('/')
            && !piece.contains(' ')
            && !piece.contains('*')
            && !piece.contains("://")
            && !piece.starts_with('/')
            && !piece.starts_with("target/")
            && [".rs", ".md", ".toml", ".go", ".svg", ".json"]
                .iter()
                .any(|ext| piece.ends_with(ext));
        if is_code && looks_like_path {
            paths.push(piece);
        }
    }
    paths
}

#[test]
fn every_markdown_link_and_path_resolves() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    markdown_files(root, &mut files);
    assert!(
        files.iter().any(|f| f.ends_with("docs/design.md")),
        "docs/design.md is missing"
    );
    let mut broken = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let dir = file.parent().unwrap();
        for target in link_targets(&text) {
            let target = target.split('#').next().unwrap().trim();
            let external = target.contains("://") || target.starts_with("mailto:");
            if target.is_empty() || external {
                continue;
            }
            if !dir.join(target).exists() {
                broken.push(format!("{}: link to {target}", file.display()));
            }
        }
        for path in backticked_paths(&text) {
            if !dir.join(path).exists() && !root.join(path).exists() {
                broken.push(format!("{}: path `{path}`", file.display()));
            }
        }
    }
    assert!(
        broken.is_empty(),
        "links and paths that do not resolve:\n{}",
        broken.join("\n")
    );
}

#[test]
fn the_checker_sees_links_and_paths() {
    let text = "see [the design](docs/design.md#two-crates) and `runtime/src/park.rs`, \
                not `cargo test` or [docs](https://docs.rs/spool-rt)";
    assert_eq!(
        link_targets(text),
        ["docs/design.md#two-crates", "https://docs.rs/spool-rt"]
    );
    assert_eq!(backticked_paths(text), ["runtime/src/park.rs"]);
}
