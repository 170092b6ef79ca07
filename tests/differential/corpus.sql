# Hand-written differential corpus: each query runs on a plain MariaDB (the reference) and through
# shardgate on the 2-shard cluster, with the same data (tests/support/dataset.rs); the answers must
# match. Run by tests/differential.rs.
#
# One query per line. `#` starts a comment (outside quotes). How the order is compared is derived
# from the query (tests/support/diff_rules.rs): no ORDER BY: multiset; ORDER BY that is a total
# order (contains the unique id; covers every GROUP BY column; covers every DISTINCT column): the
# row sequence; otherwise the sequence of the ORDER BY keys found among the output columns (ties
# may come in any order). A trailing `# keys: 1,3`, `# order: total` or `# order: none` overrides.
# Every LIMIT needs a total order (append id).
#
# Tables: dx_items (5,000 rows: id, grp, sub, price DECIMAL, score DOUBLE, qty, name, created
# DATETIME, code VARBINARY), dx_big (100,000 rows: id, grp, v, s), dx_lopsided (all rows on shard
# s1), dx_empty (no rows), dx_countries (broadcast: code = dx_items.grp, name).

# --- plain scatter SELECT and WHERE --------------------------------------------------------------
SELECT * FROM dx_items
SELECT id, name FROM dx_items
SELECT id, grp, sub FROM dx_items WHERE grp = 3
SELECT id, price FROM dx_items WHERE price IS NULL
SELECT id, score FROM dx_items WHERE score IS NOT NULL AND score > 100
SELECT id FROM dx_items WHERE id IN (3, 6, 9, 12, 15, 300, 303, 600, 1200, 4500)
SELECT * FROM dx_items WHERE id IN (-297, -294, 0, 3, 14700, 14701)
SELECT id, name FROM dx_items WHERE id = 3 OR id = 1503
SELECT id, qty FROM dx_items WHERE qty BETWEEN 10 AND 12
SELECT id, price FROM dx_items WHERE price BETWEEN 100.00 AND 150.50 AND qty IS NOT NULL
SELECT id, name FROM dx_items WHERE name = 'bob'
SELECT id, name FROM dx_items WHERE name = ''
SELECT id, name FROM dx_items WHERE name IS NULL
SELECT id, name FROM dx_items WHERE name LIKE '日本%'
SELECT id, name FROM dx_items WHERE name IN ('Zoë', 'naive', '😀x', 'O''Brien')
SELECT id, created FROM dx_items WHERE created BETWEEN '2024-03-01' AND '2024-03-15'
SELECT id, code FROM dx_items WHERE code = X'41'
SELECT id, code FROM dx_items WHERE code = X''
SELECT id, price, qty, price * qty AS total FROM dx_items WHERE qty > 45
SELECT * FROM dx_items WHERE id = 3
SELECT name, LENGTH(name), CHAR_LENGTH(name) FROM dx_items WHERE id < 100
SELECT id, sub FROM dx_items WHERE sub IS NULL OR sub > 18
SELECT * FROM dx_empty
SELECT * FROM dx_lopsided
SELECT id, v FROM dx_lopsided WHERE v IS NULL

# --- ORDER BY: columns, directions, NULLs, expressions, positions, aliases ---------------------
SELECT id, name FROM dx_items ORDER BY id
SELECT id, name FROM dx_items ORDER BY id DESC
SELECT id, grp FROM dx_items ORDER BY grp
SELECT id, grp, sub FROM dx_items ORDER BY grp DESC, sub ASC
SELECT id, grp, sub FROM dx_items ORDER BY grp, sub DESC, id
SELECT id, price FROM dx_items ORDER BY price
SELECT id, price FROM dx_items ORDER BY price DESC
SELECT id, sub FROM dx_items ORDER BY sub
SELECT id, sub FROM dx_items ORDER BY sub IS NULL, sub, id
SELECT id, sub FROM dx_items ORDER BY -sub DESC, id
SELECT id, score FROM dx_items ORDER BY score DESC, id
SELECT id, price, qty FROM dx_items ORDER BY price * qty DESC, id
SELECT id, price * qty FROM dx_items ORDER BY price * qty
SELECT id, name FROM dx_items ORDER BY LOWER(name), id
SELECT id, LOWER(name) AS l FROM dx_items ORDER BY l
SELECT id, name, grp FROM dx_items ORDER BY 3, 2
SELECT id AS item, grp AS g FROM dx_items ORDER BY g DESC, item
SELECT id, name FROM dx_items ORDER BY created, id
SELECT name FROM dx_items ORDER BY created DESC, id DESC
SELECT name FROM dx_items ORDER BY created
SELECT qty, id FROM dx_items ORDER BY qty DESC, id DESC
SELECT id, created FROM dx_items ORDER BY created DESC
SELECT id, code FROM dx_items ORDER BY code, id
SELECT id, grp, score FROM dx_items WHERE grp IN (1, 7) ORDER BY grp, score, id
SELECT id, name FROM dx_items WHERE id IN (3, 6, 9, 12, 15, 18, 21, 24) ORDER BY id DESC
SELECT * FROM dx_items ORDER BY id
SELECT * FROM dx_items ORDER BY score DESC, id
SELECT * FROM dx_items ORDER BY grp, price DESC
SELECT * FROM dx_lopsided ORDER BY id
SELECT * FROM dx_empty ORDER BY id
SELECT id, v FROM dx_lopsided ORDER BY v DESC, id
SELECT * FROM dx_items WHERE id = 300 ORDER BY id LIMIT 1

# --- ORDER BY on strings: collation, case variants, accents, trailing spaces, multi-byte -------
SELECT id, name FROM dx_items ORDER BY name
SELECT id, name FROM dx_items ORDER BY name DESC, id
SELECT id, name FROM dx_items WHERE name IN ('Bob', 'bob', 'BOB', 'bob ') ORDER BY name, id
SELECT name, id FROM dx_items WHERE name IS NOT NULL ORDER BY name COLLATE utf8mb4_bin, id
SELECT id, name FROM dx_items ORDER BY CHAR_LENGTH(name) DESC, name, id
SELECT name, grp FROM dx_items WHERE name > 'Zed' ORDER BY name, grp
SELECT id, name FROM dx_items WHERE name LIKE '%ö%' OR name LIKE '%ë%' OR name LIKE '%ï%' ORDER BY name DESC

# --- LIMIT / OFFSET (always with a total order) -------------------------------------------------
SELECT id, name FROM dx_items ORDER BY id LIMIT 10
SELECT id, name FROM dx_items ORDER BY id DESC LIMIT 5
SELECT id, price FROM dx_items ORDER BY price DESC, id LIMIT 7
SELECT id, price FROM dx_items ORDER BY price, id LIMIT 20
SELECT id, score FROM dx_items ORDER BY score, id LIMIT 100, 10
SELECT id, score FROM dx_items ORDER BY score DESC, id LIMIT 10 OFFSET 4990
SELECT id, grp FROM dx_items ORDER BY grp, id LIMIT 0
SELECT id FROM dx_items ORDER BY id LIMIT 4995, 100
SELECT id FROM dx_items ORDER BY id LIMIT 6000, 10
SELECT * FROM dx_items ORDER BY name, id LIMIT 15
SELECT id, name FROM dx_items WHERE name LIKE 'b%' ORDER BY name DESC, id LIMIT 12
SELECT id, created FROM dx_items ORDER BY created DESC, id LIMIT 3
SELECT * FROM dx_lopsided ORDER BY v, id LIMIT 5
SELECT * FROM dx_lopsided ORDER BY id DESC LIMIT 3 OFFSET 2
SELECT * FROM dx_empty ORDER BY id LIMIT 5
SELECT id, qty FROM dx_items WHERE qty IS NOT NULL ORDER BY qty DESC, id LIMIT 10 OFFSET 10
SELECT id, price * qty AS t FROM dx_items ORDER BY t DESC, id LIMIT 5
SELECT id, name FROM dx_items ORDER BY LOWER(name) DESC, id LIMIT 8
SELECT id, grp FROM dx_items WHERE id IN (3, 6, 9, 12, 15, 18, 21, 24, 27, 30) ORDER BY id LIMIT 3
SELECT id, sub FROM dx_items ORDER BY sub DESC, id LIMIT 1
SELECT id, code FROM dx_items ORDER BY code DESC, id LIMIT 6

# --- aggregates without GROUP BY ----------------------------------------------------------------
SELECT COUNT(*) FROM dx_items
SELECT COUNT(*), COUNT(sub), COUNT(price), COUNT(score), COUNT(name), COUNT(created), COUNT(code) FROM dx_items
SELECT SUM(qty), SUM(price), SUM(score) FROM dx_items
SELECT MIN(qty), MAX(qty), MIN(price), MAX(price), MIN(score), MAX(score) FROM dx_items
SELECT AVG(qty), AVG(price), AVG(score), AVG(grp) FROM dx_items
SELECT MIN(name), MAX(name) FROM dx_items
SELECT MIN(created), MAX(created) FROM dx_items
SELECT MIN(code), MAX(code) FROM dx_items
SELECT MIN(id), MAX(id), SUM(id) FROM dx_items
SELECT COUNT(*), SUM(qty), AVG(price) FROM dx_items WHERE grp = 7
SELECT COUNT(*), MIN(id), MAX(id) FROM dx_items WHERE id IN (3, 6, 9, 12, 15, 18)
SELECT COUNT(*), SUM(qty), MIN(name), MAX(price), AVG(score) FROM dx_items WHERE grp = 99
SELECT COUNT(*), SUM(v), MIN(v), MAX(v), AVG(v) FROM dx_empty
SELECT COUNT(*), SUM(v), MIN(name), MAX(name), AVG(v) FROM dx_lopsided
SELECT COUNT(*), COUNT(v), SUM(v), AVG(v) FROM dx_lopsided WHERE v IS NULL
SELECT COUNT(name) FROM dx_items WHERE name = ''
SELECT SUM(price * qty), AVG(price * qty) FROM dx_items
SELECT COUNT(*) AS n, SUM(qty) AS total_qty FROM dx_items WHERE score > 50
SELECT AVG(qty) FROM dx_items WHERE qty IS NULL
SELECT COUNT(*), SUM(qty) FROM dx_items WHERE id = 3
SELECT COUNT(*) FROM dx_countries
SELECT COUNT(*) FROM dx_big
SELECT SUM(v), MIN(v), MAX(v), AVG(v), COUNT(v) FROM dx_big
SELECT MIN(s), MAX(s) FROM dx_big

# --- GROUP BY, HAVING, ORDER BY on aggregates, LIMIT --------------------------------------------
SELECT grp, COUNT(*) FROM dx_items GROUP BY grp
SELECT grp, COUNT(*), SUM(qty), MIN(price), MAX(price), AVG(score) FROM dx_items GROUP BY grp
SELECT sub, COUNT(*) FROM dx_items GROUP BY sub
SELECT grp, sub, COUNT(*), SUM(price) FROM dx_items GROUP BY grp, sub
SELECT grp, sub FROM dx_items GROUP BY grp, sub
SELECT COUNT(*) FROM dx_items GROUP BY grp
SELECT name, COUNT(*) FROM dx_items GROUP BY name
SELECT name, COUNT(*), MIN(id), MAX(id) FROM dx_items GROUP BY name ORDER BY name
SELECT name AS n, COUNT(*) AS c FROM dx_items GROUP BY n ORDER BY c DESC, n LIMIT 5
SELECT name, grp, COUNT(*) FROM dx_items WHERE name IS NOT NULL GROUP BY name, grp ORDER BY name, grp
SELECT grp, MIN(name), MAX(name) FROM dx_items GROUP BY grp
SELECT grp, MIN(created), MAX(created) FROM dx_items GROUP BY grp ORDER BY grp
SELECT code, COUNT(*) FROM dx_items GROUP BY code
SELECT YEAR(created), MONTH(created), COUNT(*) FROM dx_items GROUP BY YEAR(created), MONTH(created)
SELECT DATE(created) AS d, COUNT(*) FROM dx_items GROUP BY d ORDER BY d LIMIT 10
SELECT grp, COUNT(*) FROM dx_items GROUP BY grp ORDER BY COUNT(*) DESC, grp
SELECT grp, COUNT(*) AS n FROM dx_items GROUP BY grp ORDER BY n DESC, grp LIMIT 3
SELECT grp, SUM(score), AVG(score) FROM dx_items GROUP BY grp ORDER BY SUM(score) DESC
SELECT grp, AVG(qty) FROM dx_items GROUP BY grp ORDER BY AVG(qty), grp
SELECT grp, sub, COUNT(*) FROM dx_items GROUP BY grp, sub ORDER BY grp DESC, sub LIMIT 10
SELECT grp, sub, COUNT(*) FROM dx_items GROUP BY grp, sub ORDER BY 3 DESC, 1, 2 LIMIT 5 OFFSET 2
SELECT qty, COUNT(*) FROM dx_items WHERE qty IS NOT NULL GROUP BY qty ORDER BY qty LIMIT 10, 10
SELECT sub, MAX(price) FROM dx_items GROUP BY sub ORDER BY sub DESC LIMIT 4
SELECT grp, SUM(qty) FROM dx_items GROUP BY grp HAVING SUM(qty) > 10000
SELECT grp, COUNT(*) FROM dx_items GROUP BY grp HAVING COUNT(*) < 500
SELECT grp, AVG(price) FROM dx_items GROUP BY grp HAVING grp IN (1, 2, 7)
SELECT sub, COUNT(*) FROM dx_items GROUP BY sub HAVING sub IS NULL OR sub > 15
SELECT name, COUNT(*) FROM dx_items GROUP BY name HAVING COUNT(*) > 200 ORDER BY name
SELECT grp, MAX(score) FROM dx_items GROUP BY grp HAVING MAX(score) > 149 ORDER BY grp
SELECT grp, COUNT(*) FROM dx_items WHERE id IN (3, 6, 9, 12, 15, 18, 21, 24, 27, 30, 33, 36) GROUP BY grp
SELECT grp, COUNT(*) FROM dx_items WHERE id = 3 GROUP BY grp
SELECT grp, COUNT(*), SUM(v) FROM dx_lopsided GROUP BY grp
SELECT grp, COUNT(*), MAX(name) FROM dx_lopsided GROUP BY grp ORDER BY grp DESC LIMIT 2
SELECT grp, COUNT(*) FROM dx_empty GROUP BY grp
SELECT grp, COUNT(*), SUM(v), MIN(v), MAX(v), AVG(v) FROM dx_big GROUP BY grp ORDER BY grp
SELECT v, COUNT(*) FROM dx_big GROUP BY v
SELECT s, COUNT(*), MIN(id) FROM dx_big GROUP BY s ORDER BY COUNT(*) DESC, s LIMIT 20
SELECT grp, COUNT(*), AVG(v) FROM dx_big WHERE v IS NOT NULL GROUP BY grp HAVING AVG(v) > 24000

# --- DISTINCT ----------------------------------------------------------------------------------
SELECT DISTINCT grp FROM dx_items
SELECT DISTINCT grp, sub FROM dx_items
SELECT DISTINCT name FROM dx_items
SELECT DISTINCT name FROM dx_items ORDER BY name
SELECT DISTINCT sub FROM dx_items ORDER BY sub DESC LIMIT 5
SELECT DISTINCT grp, sub FROM dx_items ORDER BY grp, sub LIMIT 10 OFFSET 5
SELECT DISTINCT code FROM dx_items
SELECT DISTINCT qty FROM dx_items WHERE qty < 5
SELECT DISTINCT LOWER(name) FROM dx_items
SELECT DISTINCT created FROM dx_items WHERE created < '2024-01-10' ORDER BY created DESC
SELECT DISTINCT v FROM dx_lopsided ORDER BY v
SELECT DISTINCT grp FROM dx_empty
SELECT DISTINCT grp FROM dx_big ORDER BY grp

# --- JOIN with the broadcast table ------------------------------------------------------------
SELECT i.id, i.grp, c.name FROM dx_items i JOIN dx_countries c ON c.code = i.grp WHERE i.id < 300
SELECT i.id, c.name FROM dx_items i LEFT JOIN dx_countries c ON c.code = i.grp WHERE i.grp IN (6, 7)
SELECT i.id, c.name AS country FROM dx_items i JOIN dx_countries c ON c.code = i.grp ORDER BY country, i.id LIMIT 10
SELECT c.name, COUNT(*) FROM dx_items i JOIN dx_countries c ON c.code = i.grp GROUP BY c.name
SELECT c.code, c.name, SUM(i.qty) FROM dx_items i JOIN dx_countries c ON c.code = i.grp GROUP BY c.code, c.name ORDER BY c.code
SELECT COUNT(*) FROM dx_items i JOIN dx_countries c ON c.code = i.grp
SELECT c.name, i.name FROM dx_countries c JOIN dx_items i ON i.grp = c.code WHERE i.id IN (3, 300, 3000)
SELECT i.id, i.name, c.name FROM dx_items i, dx_countries c WHERE c.code = i.grp AND i.name = 'bob' ORDER BY i.id
SELECT * FROM dx_countries
SELECT * FROM dx_countries ORDER BY name

# --- large results (dx_big: 100,000 rows) ------------------------------------------------------
SELECT * FROM dx_big
SELECT id, v FROM dx_big ORDER BY v DESC, id
SELECT id, s FROM dx_big ORDER BY s
SELECT id, grp, v FROM dx_big WHERE v > 25000 ORDER BY grp, v, id
SELECT * FROM dx_big ORDER BY id LIMIT 99990, 20
SELECT id FROM dx_big ORDER BY v, id LIMIT 5
SELECT * FROM dx_big WHERE id IN (1, 2, 3, 50000, 99999, 100000, 100001)
