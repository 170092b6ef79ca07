# Queries shardgate must refuse with error 1235 (ER_NOT_SUPPORTED_YET) when they span shards,
# because no merge of per-shard results gives the right answer. Each is first run on the
# reference server (it must be valid SQL there); through the proxy it must fail with 1235.
# Not compared. Run by tests/differential.rs.

# DISTINCT aggregates: a value counted on two shards must count once.
SELECT COUNT(DISTINCT grp) FROM dx_items
SELECT grp, COUNT(DISTINCT sub) FROM dx_items GROUP BY grp
SELECT COUNT(DISTINCT name, grp) FROM dx_items
SELECT SUM(DISTINCT qty) FROM dx_items
SELECT AVG(DISTINCT price) FROM dx_items

# Concatenating aggregates: order and separators across shards.
SELECT GROUP_CONCAT(name) FROM dx_items
SELECT grp, GROUP_CONCAT(id ORDER BY id) FROM dx_items GROUP BY grp
SELECT JSON_ARRAYAGG(id) FROM dx_items

# Joins of two sharded tables not bound to one shard: rows meet on different shards.
SELECT i.id, b.v FROM dx_items i JOIN dx_big b ON b.id = i.qty
SELECT a.id, b.id FROM dx_items a JOIN dx_items b ON b.id = a.sub
SELECT i.id, l.v FROM dx_items i LEFT JOIN dx_lopsided l ON l.v = i.qty WHERE i.id < 100

# Subqueries on sharded tables in a scatter: each shard sees only its part.
SELECT id FROM dx_items WHERE grp IN (SELECT grp FROM dx_lopsided)
SELECT * FROM dx_items WHERE id = (SELECT MAX(id) FROM dx_items)
SELECT id, (SELECT COUNT(*) FROM dx_lopsided l WHERE l.grp = i.grp) FROM dx_items i WHERE i.id < 30
SELECT COUNT(*) FROM (SELECT grp FROM dx_items GROUP BY grp) t

# Window functions: frames span shards.
SELECT id, ROW_NUMBER() OVER (ORDER BY id) FROM dx_items
SELECT id, SUM(qty) OVER (PARTITION BY grp) FROM dx_items

# WITH ROLLUP: super-aggregate rows a plain GROUP BY merge would get wrong.
SELECT grp, COUNT(*) FROM dx_items GROUP BY grp WITH ROLLUP
