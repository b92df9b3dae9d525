//! Tokens of Rust source: enough of the lexical grammar to find items
//! and their docs (comments, strings and lifetimes never confuse it).

#[derive(Clone, Debug, PartialEq)]
pub enum Tok {
    Ident(String),
    Lifetime,
    /// A string literal's contents (escapes of `"`, `\` and `n` undone).
    Str(String),
    /// Any other literal.
    Lit,
    Punct(&'static str),
    Open(char),
    Close(char),
    Doc {
        inner: bool,
        text: String,
    },
}

#[derive(Clone, Debug)]
pub struct Token {
    pub tok: Tok,
    pub line: usize,
}

pub fn tokenize(src: &str) -> Vec<Token> {
    let s: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let (mut i, mut line) = (0, 1);
    let at = |i: usize| s.get(i).copied().unwrap_or('\0');
    while i < s.len() {
        let c = s[i];
        let start_line = line;
        let mut push = |tok| {
            out.push(Token {
                tok,
                line: start_line,
            })
        };
        if c == '\n' {
            line += 1;
            i += 1;
        } else if c.is_whitespace() {
            i += 1;
        } else if c == '/' && at(i + 1) == '/' {
            let end = s[i..]
                .iter()
                .position(|&c| c == '\n')
                .map_or(s.len(), |p| i + p);
            let text: String = s[i..end].iter().collect();
            if text.starts_with("///") && !text.starts_with("////") {
                push(Tok::Doc {
                    inner: false,
                    text: text[3..].to_string(),
                });
            } else if let Some(rest) = text.strip_prefix("//!") {
                push(Tok::Doc {
                    inner: true,
                    text: rest.to_string(),
                });
            }
            i = end;
        } else if c == '/' && at(i + 1) == '*' {
            let (mut depth, mut j) = (1, i + 2);
            while j < s.len() && depth > 0 {
                if s[j] == '/' && at(j + 1) == '*' {
                    depth += 1;
                    j += 2;
                } else if s[j] == '*' && at(j + 1) == '/' {
                    depth -= 1;
                    j += 2;
                } else {
                    if s[j] == '\n' {
                        line += 1;
                    }
                    j += 1;
                }
            }
            let text: String = s[i..j].iter().collect();
            let body = || text[3..text.len() - 2].to_string();
            if text.starts_with("/**") && !text.starts_with("/***") && text.len() > 4 {
                push(Tok::Doc {
                    inner: false,
                    text: body(),
                });
            } else if text.starts_with("/*!") {
                push(Tok::Doc {
                    inner: true,
                    text: body(),
                });
            }
            i = j;
        } else if let Some((raw, quote)) = string_start(&s, i) {
            let hashes = s[..quote].iter().rev().take_while(|&&c| c == '#').count();
            let mut j = quote + 1;
            let mut text = String::new();
            while let Some(&d) = s.get(j) {
                if d == '\n' {
                    line += 1;
                }
                if !raw && d == '\\' {
                    match at(j + 1) {
                        'n' => text.push('\n'),
                        '\n' => {
                            line += 1;
                            j += 2;
                            while at(j).is_whitespace() {
                                if at(j) == '\n' {
                                    line += 1;
                                }
                                j += 1;
                            }
                            continue;
                        }
                        e => text.push(e),
                    }
                    j += 2;
                } else if d == '"'
                    && s[j + 1..]
                        .iter()
                        .take(hashes)
                        .filter(|&&c| c == '#')
                        .count()
                        == hashes
                {
                    j += 1 + hashes;
                    break;
                } else {
                    text.push(d);
                    j += 1;
                }
            }
            out.push(Token {
                tok: Tok::Str(text),
                line: start_line,
            });
            i = j;
        } else if c == '\'' || c == 'b' && at(i + 1) == '\'' {
            let q = if c == 'b' { i + 1 } else { i };
            if at(q + 1) == '\\' {
                let mut j = q + 3;
                while at(j) != '\'' {
                    j += 1;
                }
                push(Tok::Lit);
                i = j + 1;
            } else if at(q + 2) == '\'' {
                push(Tok::Lit);
                i = q + 3;
            } else {
                let mut j = q + 1;
                while at(j).is_alphanumeric() || at(j) == '_' {
                    j += 1;
                }
                push(Tok::Lifetime);
                i = j;
            }
        } else if c.is_alphabetic() || c == '_' {
            let mut j = i;
            if c == 'r' && at(i + 1) == '#' {
                j += 2;
            }
            let from = j;
            while at(j).is_alphanumeric() || at(j) == '_' {
                j += 1;
            }
            push(Tok::Ident(s[from..j].iter().collect()));
            i = j;
        } else if c.is_ascii_digit() {
            let mut j = i;
            while at(j).is_alphanumeric()
                || at(j) == '_'
                || at(j) == '.' && at(j + 1).is_ascii_digit()
            {
                j += 1;
            }
            push(Tok::Lit);
            i = j;
        } else if "([{".contains(c) {
            push(Tok::Open(c));
            i += 1;
        } else if ")]}".contains(c) {
            push(Tok::Close(c));
            i += 1;
        } else {
            pub const MULTI: [&str; 3] = ["::", "->", "=>"];
            pub const SINGLE: &str = "!#$%&*+,-./:;<=>?@^|~";
            let two: String = s[i..(i + 2).min(s.len())].iter().collect();
            if let Some(m) = MULTI.iter().find(|m| **m == two) {
                push(Tok::Punct(m));
                i += 2;
            } else if let Some(p) = SINGLE.find(c) {
                push(Tok::Punct(&SINGLE[p..p + 1]));
                i += 1;
            } else {
                panic!("unexpected character {c:?} on line {line}");
            }
        }
    }
    out
}

/// Whether a string literal starts at `i`: `(raw, index of its opening
/// quote)`, for `"`, `b"`, `c"`, `r"`, `r#"`, `br#"`, `cr#"`.
pub fn string_start(s: &[char], i: usize) -> Option<(bool, usize)> {
    let at = |k: usize| s.get(k).copied().unwrap_or('\0');
    let mut k = i;
    if at(k) == 'b' || at(k) == 'c' {
        k += 1;
    }
    let raw = at(k) == 'r';
    if raw {
        k += 1;
        while at(k) == '#' {
            k += 1;
        }
    }
    (at(k) == '"').then_some((raw, k))
}
