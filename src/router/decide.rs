//! The routing decision for statements that read or write tables (SELECT,
//! UPDATE, DELETE, INSERT ... SELECT into a non-sharded table), from the
//! collected table references and their shard key bindings.

use std::collections::BTreeSet;

use super::analysis::{and_list, not_supported, targets_of, Ctx, Routing};
use super::plan::{RouteError, Targets};
use super::rewrite::split_in_list;
use super::shard_key::{bindings, evaluate, RefShards};
use super::tables::{Collected, Placement, TableRef};
use super::KeyParams;
use crate::config::ShardedTable;

/// What the caller knows about the statement beyond its tables.
pub(crate) struct Shape<'s> {
    /// References the statement writes (UPDATE / DELETE / INSERT targets).
    pub written: &'s [usize],
    /// A construct that gives wrong results when run on several shards
    /// (ORDER BY, LIMIT, COUNT(*) ...), named for the error message.
    pub construct: Option<String>,
    /// UPDATE / DELETE ... LIMIT: which rows it changes depends on each copy.
    pub limit: bool,
}

fn algo(t: &ShardedTable) -> &'static str {
    match t.algorithm {
        crate::config::Algorithm::Hash => "hash",
        crate::config::Algorithm::Mod => "mod",
        crate::config::Algorithm::Range => "range",
    }
}

fn same_placement(a: &ShardedTable, b: &ShardedTable) -> bool {
    a.algorithm == b.algorithm && a.key_type == b.key_type && a.boundaries == b.boundaries && a.collation == b.collation
}

fn distinct(names: impl Iterator<Item = String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for n in names {
        if !out.contains(&n) {
            out.push(n);
        }
    }
    out
}

/// A call of a function whose value differs on every server (for writes to broadcast tables).
fn nondeterministic_call(ctx: &Ctx<'_, '_>) -> Option<String> {
    const FUNCTIONS: [&str; 5] = ["RAND", "UUID", "UUID_SHORT", "SYSDATE", "CONNECTION_ID"];
    let lx = ctx.lx;
    (0..lx.tokens.len()).find_map(|i| {
        let f = FUNCTIONS.iter().find(|f| lx.is_kw(i, f))?;
        let next = lx.next_sig(i, lx.tokens.len())?;
        matches!(lx.token(next), sqlparser::tokenizer::Token::LParen).then(|| f.to_string())
    })
}

/// Route a statement over its tables.
pub(crate) fn decide(ctx: &Ctx<'_, '_>, col: &Collected<'_, '_>, shape: &Shape<'_>) -> Result<Routing, RouteError> {
    let refs = &col.refs;
    if let Some(what) = col.opaque {
        return Err(not_supported(format!(
            "shardgate cannot analyse this statement ({what}); add /* shardgate:shard=NAME */ to route it"
        )));
    }
    let of =
        |p: fn(&Placement<'_>) -> bool| -> Vec<usize> { (0..refs.len()).filter(|&r| p(&refs[r].placement)).collect() };
    let sharded = of(|p| matches!(p, Placement::Sharded(_)));
    let unlisted = of(|p| matches!(p, Placement::Unlisted));
    let bcast = of(|p| matches!(p, Placement::Broadcast));
    let names = |ids: &[usize]| and_list(&distinct(ids.iter().map(|&r| refs[r].shown.clone())));

    let written_bcast: Vec<usize> = shape.written.iter().copied().filter(|r| bcast.contains(r)).collect();
    if !written_bcast.is_empty() {
        let b = names(&written_bcast);
        if let Some(&other) = shape.written.iter().find(|r| !bcast.contains(r)) {
            return Err(not_supported(format!(
                "one statement cannot write broadcast table {b} and table {} together; split it",
                refs[other].shown
            )));
        }
        if !sharded.is_empty() {
            return Err(not_supported(format!(
                "writing broadcast table {b} from sharded table {} is not supported: every shard would write different rows",
                names(&sharded)
            )));
        }
        if !unlisted.is_empty() {
            return Err(not_supported(format!(
                "writing broadcast table {b} from table {}, which only the default shard {} has, is not supported",
                names(&unlisted),
                ctx.default_name()
            )));
        }
        if shape.limit {
            return Err(not_supported(format!(
                "UPDATE / DELETE ... LIMIT on broadcast table {b} could change different rows on each shard; \
                 use a condition on a unique key instead"
            )));
        }
        if let Some(f) = nondeterministic_call(ctx) {
            return Err(not_supported(format!(
                "{f}() in a write to broadcast table {b} would give each shard's copy a different value; \
                 compute the value first and write it as a literal"
            )));
        }
        return Ok(ctx.to_all(format!("write to broadcast table {b} → all shards")));
    }
    if sharded.is_empty() {
        return Ok(if !unlisted.is_empty() {
            ctx.to_default(format!("unlisted table {}", names(&unlisted)))
        } else if !bcast.is_empty() {
            Routing::new(Targets::AnyShard, format!("read of broadcast table {} → any shard", names(&bcast)))
        } else {
            ctx.to_default("no table")
        });
    }
    if ctx.cfg.shards.len() == 1 {
        return Ok(Routing::new(Targets::Shard(0), format!("only one shard ({})", ctx.shard_name(0))));
    }

    let binds = bindings(col, ctx.lx);
    let evaluated: Vec<(usize, RefShards<'_>)> = sharded
        .iter()
        .map(|&r| {
            let t = refs[r].placement.sharded().expect("sharded");
            (r, evaluate(ctx.cfg, t, binds.get(&r).map_or(&[][..], Vec::as_slice), ctx.prepare))
        })
        .collect();
    let key_reason = |r: usize, e: &RefShards<'_>| -> String {
        let t = refs[r].placement.sharded().expect("sharded");
        match e {
            RefShards::Fixed { shards, binding, .. } => format!(
                "{}.{} {} → {} ({})",
                refs[r].shown,
                t.shard_key,
                binding.describe(),
                ctx.shard_names(shards),
                algo(t)
            ),
            RefShards::Deferred { binding, .. } => {
                format!(
                    "{}.{} {}: shard chosen at execute ({})",
                    refs[r].shown,
                    t.shard_key,
                    binding.describe(),
                    algo(t)
                )
            }
            RefShards::Unbound => {
                format!("no shard key for {}: scatter to all shards", refs[r].shown)
            }
        }
    };
    let nested: Vec<usize> = sharded.iter().copied().filter(|&r| refs[r].nested).collect();
    let nested_err = || {
        not_supported(format!(
            "a subquery on sharded table {} in a statement that runs on several shards is not supported yet; \
             add a shard key condition that selects one shard",
            names(&nested)
        ))
    };
    let construct_err = |c: &str| {
        not_supported(format!(
            "This version of shardgate doesn't yet support '{c} across shards (table {})'; add a shard key condition",
            names(&sharded)
        ))
    };

    let mut routing = if sharded.len() > 1 {
        let join_err = || {
            if !nested.is_empty() {
                return nested_err();
            }
            let tables = distinct(sharded.iter().map(|&r| refs[r].shown.clone()));
            let scopes = col.scopes.iter().filter(|s| s.refs.iter().any(|r| sharded.contains(r))).count();
            if scopes > 1 {
                not_supported(format!("UNION across shards (tables {}) is not supported yet", and_list(&tables)))
            } else if tables.len() == 1 {
                not_supported(format!(
                    "cross-shard self-JOIN of {} is not supported yet; bind the shard key of each reference to the same value",
                    tables[0]
                ))
            } else {
                not_supported(format!(
                    "cross-shard JOIN of {} is not supported yet; bind the shard key of each table to the same value",
                    and_list(&tables)
                ))
            }
        };
        join(ctx, refs, &evaluated, &key_reason, join_err)?
    } else {
        let (r, e) = &evaluated[0];
        let multi_err =
            if refs[*r].nested { Some(nested_err()) } else { shape.construct.as_deref().map(construct_err) };
        match e {
            RefShards::Fixed { shards, binding, per_value } => {
                if shards.len() > 1 {
                    if let Some(err) = multi_err {
                        return Err(err);
                    }
                }
                let mut routing = Routing::new(targets_of(shards), key_reason(*r, e));
                if shards.len() > 1 && !ctx.prepare {
                    routing.in_split = binding.in_list.and_then(|list| split_in_list(ctx.lx, list, per_value));
                    routing.split = routing.in_split.as_ref().map(|ls| ls.texts(ctx.lx.sql));
                }
                routing
            }
            RefShards::Unbound => {
                if let Some(err) = multi_err {
                    return Err(err);
                }
                ctx.to_all(key_reason(*r, e))
            }
            RefShards::Deferred { params, literal_shards, .. } => {
                let mut routing = ctx.to_all(key_reason(*r, e));
                routing.key_params = Some(KeyParams {
                    table: refs[*r].name.clone(),
                    params: params.clone(),
                    literal_shards: literal_shards.iter().copied().collect(),
                    insert: false,
                    multi_shard_error: multi_err,
                    required_shard: None,
                });
                routing
            }
        }
    };

    if !unlisted.is_empty() {
        let d = ctx.cfg.default_shard;
        let err = not_supported(format!(
            "sharded table {} cannot be combined with table {}, which only the default shard {} has; \
             add a shard key condition that selects {}",
            names(&sharded),
            names(&unlisted),
            ctx.default_name(),
            ctx.default_name()
        ));
        match &mut routing.key_params {
            Some(kp) => kp.required_shard = Some((d, err)),
            None if routing.targets == Targets::Shard(d) => {}
            None => return Err(err),
        }
        routing.reason.push_str(&format!("; with unlisted table {}", names(&unlisted)));
    }
    Ok(routing)
}

/// Several sharded references: every one must be bound to the same single shard.
fn join(
    ctx: &Ctx<'_, '_>,
    refs: &[TableRef<'_>],
    evaluated: &[(usize, RefShards<'_>)],
    key_reason: &dyn Fn(usize, &RefShards<'_>) -> String,
    join_err: impl Fn() -> RouteError,
) -> Result<Routing, RouteError> {
    let mut fixed = BTreeSet::new();
    let mut deferred: Vec<(usize, &Vec<usize>)> = Vec::new();
    for (r, e) in evaluated {
        match e {
            RefShards::Fixed { shards, .. } => fixed.extend(shards),
            RefShards::Deferred { params, literal_shards, .. } => {
                fixed.extend(literal_shards);
                deferred.push((*r, params));
            }
            RefShards::Unbound => return Err(join_err()),
        }
    }
    if fixed.len() > 1 {
        return Err(join_err());
    }
    let reason = distinct(evaluated.iter().map(|(r, e)| key_reason(*r, e))).join("; ");
    if deferred.is_empty() {
        return Ok(Routing::new(targets_of(&fixed), reason));
    }
    let first = refs[deferred[0].0].placement.sharded().expect("sharded");
    if let Some(&(other, _)) =
        deferred.iter().find(|(r, _)| !same_placement(first, refs[*r].placement.sharded().expect("sharded")))
    {
        return Err(not_supported(format!(
            "placeholders bind the shard keys of {} and {}, which are placed differently; \
             use literal key values or a /* shardgate:shard=NAME */ hint",
            refs[deferred[0].0].shown, refs[other].shown
        )));
    }
    let mut params: Vec<usize> = deferred.iter().flat_map(|(_, p)| p.iter().copied()).collect();
    params.sort_unstable();
    params.dedup();
    let mut routing = ctx.to_all(reason);
    routing.key_params = Some(KeyParams {
        table: refs[deferred[0].0].name.clone(),
        params,
        literal_shards: fixed.into_iter().collect(),
        insert: false,
        multi_shard_error: Some(join_err()),
        required_shard: None,
    });
    Ok(routing)
}
