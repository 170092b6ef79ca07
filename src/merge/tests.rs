//! Pipeline tests on hand-made rows: no sockets.

use std::sync::Arc;

use super::spec::Expr;
use super::*;
use crate::merge::value::ColMeta;

const INT: ColMeta = ColMeta { ty: 0x08, flags: 0, charset: 63, decimals: 0 };
const DEC2: ColMeta = ColMeta { ty: 0xF6, flags: 0, charset: 63, decimals: 2 };
const AVG6: ColMeta = ColMeta { ty: 0xF6, flags: 0, charset: 63, decimals: 6 };
const TEXT: ColMeta = ColMeta { ty: 0xFD, flags: 0, charset: 45, decimals: 0 };
const BIN: ColMeta = ColMeta { ty: 0xFD, flags: 0, charset: 63, decimals: 0 };

fn row(cells: &[Option<&str>]) -> Row {
    Row::from_cells(cells.iter().map(|c| c.map(str::as_bytes)))
}

fn texts(rows: &[Row], n: usize) -> Vec<Vec<Option<String>>> {
    rows.iter().map(|r| (0..n).map(|i| r.get(i).map(|b| String::from_utf8_lossy(b).into_owned())).collect()).collect()
}

fn schema(visible: usize, metas: &[ColMeta]) -> Schema {
    let pads = metas.iter().map(|m| (m.charset == 45).then(|| Arc::from(&[0u8, 0x20][..]))).collect();
    Schema { visible, metas: metas.to_vec(), pads }
}

/// Merge shard streams (each already in merge order) the way the executor does.
fn run(spec: MergeSpec, sch: Schema, shards: Vec<Vec<Row>>) -> Result<Vec<Row>, MergeError> {
    let mut p = Pipeline::new(Arc::new(spec), sch, 1 << 20)?;
    let mut iters: Vec<_> = shards.into_iter().map(|v| v.into_iter()).collect();
    let mut heads: Vec<Option<Row>> = iters.iter_mut().map(|i| i.next()).collect();
    let mut out = Vec::new();
    while let Some(i) = p.first_of(&heads)? {
        let r = heads[i].take().expect("head");
        heads[i] = iters[i].next();
        p.push(r, &mut out)?;
        if p.satisfied() {
            break;
        }
    }
    p.finish(&mut out)?;
    Ok(out)
}

fn key(col: Col, desc: bool) -> SortKey {
    SortKey { col, weight: None, desc }
}

#[test]
fn ordered_merge_interleaves_and_applies_offset_limit() {
    let spec = MergeSpec {
        order: vec![key(Col::Visible(0), true)],
        offset: 1,
        limit: Some(3),
        limit_pushed: true,
        ..Default::default()
    };
    let a = vec![row(&[Some("9")]), row(&[Some("5")]), row(&[Some("1")])];
    let b = vec![row(&[Some("10")]), row(&[Some("6")]), row(&[None])];
    let out = run(spec, schema(1, &[INT]), vec![a, b]).unwrap();
    assert_eq!(texts(&out, 1), vec![vec![Some("9".into())], vec![Some("6".into())], vec![Some("5".into())]]);
}

#[test]
fn text_keys_compare_by_weight_and_hidden_columns_stay_behind() {
    // name, WEIGHT_STRING(name) hidden.
    let spec = MergeSpec {
        hidden: 1,
        order: vec![SortKey { col: Col::Visible(0), weight: Some(Col::Hidden(0)), desc: false }],
        ..Default::default()
    };
    let a = vec![row(&[Some("apple"), Some("\u{0}A")]), row(&[Some("Bob"), Some("\u{0}B")])];
    let b = vec![row(&[Some("bob "), Some("\u{0}B\u{0} ")]), row(&[Some("Carl"), Some("\u{0}C")])];
    let out = run(spec, schema(1, &[TEXT, BIN]), vec![a, b]).unwrap();
    let names: Vec<_> = texts(&out, 1).into_iter().map(|r| r[0].clone().unwrap()).collect();
    assert_eq!(names, ["apple", "Bob", "bob ", "Carl"]);
    assert_eq!(out[0].prefix(1), &[5, b'a', b'p', b'p', b'l', b'e'][..]);
}

#[test]
fn text_without_weight_is_refused() {
    let spec = MergeSpec { order: vec![key(Col::Visible(0), false)], ..Default::default() };
    let e = Pipeline::new(Arc::new(spec), schema(1, &[TEXT]), 1 << 20).err().unwrap();
    assert_eq!(e.code, 1235);
}

#[test]
fn groups_fold_partial_aggregates_and_having_filters() {
    // SELECT grp, COUNT(*), SUM(price), MIN(price), AVG(price) ... GROUP BY grp HAVING COUNT(*) > 2
    // shard columns: grp, count, sum, min, avg | hidden: SUM(price), COUNT(price)
    let spec = MergeSpec {
        hidden: 2,
        order: vec![key(Col::Visible(0), false)],
        group: Some(vec![key(Col::Visible(0), false)]),
        aggs: vec![
            AggCol { col: Col::Visible(1), agg: Agg::Count },
            AggCol { col: Col::Visible(2), agg: Agg::Sum },
            AggCol { col: Col::Visible(3), agg: Agg::Min { weight: None } },
            AggCol { col: Col::Visible(4), agg: Agg::Avg { sum: Col::Hidden(0), count: Col::Hidden(1) } },
            AggCol { col: Col::Hidden(0), agg: Agg::Sum },
            AggCol { col: Col::Hidden(1), agg: Agg::Count },
        ],
        having: Some(Expr::Cmp(spec::CmpOp::Gt, Box::new(Expr::Col(Col::Visible(1))), Box::new(Expr::Num("2".into())))),
        ..Default::default()
    };
    let metas = [INT, INT, DEC2, DEC2, AVG6, DEC2, INT];
    let s0 = vec![
        row(&[Some("1"), Some("2"), Some("3.00"), Some("1.00"), Some("1.500000"), Some("3.00"), Some("2")]),
        row(&[Some("2"), Some("1"), None, None, None, None, Some("0")]),
    ];
    let s1 = vec![
        row(&[Some("1"), Some("2"), Some("4.50"), Some("0.50"), Some("2.250000"), Some("4.50"), Some("2")]),
        row(&[Some("3"), Some("5"), Some("1.00"), Some("1.00"), Some("1.000000"), Some("1.00"), Some("1")]),
    ];
    let out = run(spec, schema(5, &metas), vec![s0, s1]).unwrap();
    let t = texts(&out, 5);
    assert_eq!(t.len(), 2, "{t:?}");
    let s = |v: &str| Some(v.to_string());
    assert_eq!(t[0], vec![s("1"), s("4"), s("7.50"), s("0.50"), s("1.875000")]);
    assert_eq!(t[1], vec![s("3"), s("5"), s("1.00"), s("1.00"), s("1.000000")]);
}

#[test]
fn global_aggregate_over_empty_shards() {
    let spec = MergeSpec {
        group: Some(vec![]),
        aggs: vec![
            AggCol { col: Col::Visible(0), agg: Agg::Count },
            AggCol { col: Col::Visible(1), agg: Agg::Max { weight: None } },
        ],
        ..Default::default()
    };
    let out = run(
        spec,
        schema(2, &[INT, INT]),
        vec![vec![row(&[Some("0"), None])], vec![row(&[Some("3"), Some("-2")])], vec![row(&[Some("0"), None])]],
    )
    .unwrap();
    assert_eq!(texts(&out, 2), vec![vec![Some("3".into()), Some("-2".into())]]);
}

#[test]
fn final_sort_orders_groups_and_respects_budget() {
    let spec = MergeSpec {
        order: vec![key(Col::Visible(0), false)],
        group: Some(vec![key(Col::Visible(0), false)]),
        aggs: vec![AggCol { col: Col::Visible(1), agg: Agg::Count }],
        final_order: vec![key(Col::Visible(1), true), key(Col::Visible(0), false)],
        limit: Some(2),
        ..Default::default()
    };
    let s0 = vec![row(&[Some("1"), Some("1")]), row(&[Some("2"), Some("5")]), row(&[Some("3"), Some("2")])];
    let s1 = vec![row(&[Some("1"), Some("9")]), row(&[Some("3"), Some("4")])];
    let out = run(spec.clone(), schema(2, &[INT, INT]), vec![s0.clone(), s1.clone()]).unwrap();
    assert_eq!(
        texts(&out, 2),
        vec![vec![Some("1".into()), Some("10".into())], vec![Some("3".into()), Some("6".into())]]
    );

    let unlimited = MergeSpec { limit: None, ..spec };
    let mut p = Pipeline::new(Arc::new(unlimited), schema(2, &[INT, INT]), 100).unwrap();
    let mut out = Vec::new();
    let mut err = None;
    for r in s0.into_iter().chain(s1) {
        if let Err(e) = p.push(r, &mut out) {
            err = Some(e);
            break;
        }
    }
    let err = err.or_else(|| p.finish(&mut out).err()).expect("over budget");
    assert_eq!(err.code, 1038);
}
