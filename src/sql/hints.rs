//! Routing hints in comments: `/* shardgate:primary */`, `/* shardgate:shard=s1 */`
//! (several directives may share one comment: `/* shardgate:shard=s1,primary */`).

use super::lexer::Lexed;

/// The hints found anywhere in a client text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hints {
    /// Force the primary.
    pub primary: bool,
    /// Force this shard (the name as written).
    pub shard: Option<String>,
}

/// Collect the hints of every comment. A comment that starts with `shardgate:`
/// but holds an unknown directive is an error, so a typo never silently misroutes.
pub fn hints(lexed: &Lexed<'_>) -> Result<Hints, String> {
    let mut out = Hints::default();
    for comment in lexed.comments() {
        let body = comment.trim();
        let Some(rest) = strip_prefix_ci(body, "shardgate:") else {
            continue;
        };
        for directive in rest.split(',').map(str::trim).filter(|d| !d.is_empty()) {
            if directive.eq_ignore_ascii_case("primary") {
                out.primary = true;
                continue;
            }
            let shard = strip_prefix_ci(directive, "shard")
                .map(str::trim_start)
                .and_then(|r| r.strip_prefix('='))
                .map(str::trim)
                .filter(|name| !name.is_empty() && !name.contains(char::is_whitespace));
            match shard {
                Some(name) => {
                    if let Some(prev) = &out.shard {
                        if !prev.eq_ignore_ascii_case(name) {
                            return Err(format!("conflicting shardgate hints: shard={prev} and shard={name}"));
                        }
                    }
                    out.shard = Some(name.to_owned());
                }
                None => {
                    return Err(format!(
                        "unknown shardgate hint '{directive}'; use /* shardgate:primary */ \
                         or /* shardgate:shard=NAME */"
                    ))
                }
            }
        }
    }
    Ok(out)
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix).then(|| &s[prefix.len()..])
}
