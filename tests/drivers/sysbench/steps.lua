-- The driver-matrix steps through sysbench's SQL API: libmariadb, with con:prepare() as a
-- server-side prepared statement (COM_STMT_PREPARE/EXECUTE). sysbench cannot read the values of
-- a prepared SELECT, only its row count, so prepared reads check values in their WHERE clause.
-- Run once: sysbench --events=1 --threads=1 steps.lua run
--
-- Reads outside a transaction go to a replica, which applies writes asynchronously: checks
-- after writes retry for up to 5 s (`eventually`), and absence is checked in a transaction (on
-- the primary).

local ffi = require("ffi")
pcall(ffi.cdef, "int usleep(unsigned int usec);")

local T = os.getenv("SG_TABLE")
local AI = os.getenv("SG_AI_TABLE")
local ok_all = true
local con

local function step(n, name, fn)
   local ok, detail = pcall(fn)
   if not ok and type(detail) == "table" then
      detail = string.format("errno %s: %s", tostring(detail.sql_errno), tostring(detail.sql_errmsg))
   end
   detail = tostring(detail or ""):gsub("%s+", " ")
   print(string.format("STEP %d %s %s %s", n, name, ok and "ok" or "fail", detail))
   ok_all = ok_all and ok
end

local function expect(got, want, what)
   if got ~= want then
      error(string.format("%s: got %s, want %s", what, tostring(got), tostring(want)), 0)
   end
end

-- Two sysbench 1.0.20 crashes shape this script: a connection's result keeps pointing at the
-- last prepared statement it came from, so freeing a later result after that statement was
-- closed is a use-after-free (statements are therefore never closed); and with garbage
-- collection on, finalisers free results a second time (so it is stopped in event()).

-- The first row of a query, as a table; the result is freed at once.
local function row(sql)
   local rs = con:query(sql)
   local r = rs:fetch_row()
   rs:free()
   return r
end

local function value(sql)
   return row(sql)[1]
end

-- Retries check() (which raises on a mismatch) every 10 ms for up to 5 s; returns a note of
-- how long the replicas took, or "" when the first try passed.
local function eventually(check)
   for try = 0, 500 do
      local ok, err = pcall(check)
      if ok then
         return try == 0 and "" or string.format(" (replicas caught up after ~%d ms)", try * 10)
      end
      if try == 500 then error(err, 0) end
      ffi.C.usleep(10000)
   end
end

local function connect()
   local drv = sysbench.sql.driver()
   con = drv:connect()
   return "connection id " .. value("SELECT CONNECTION_ID()")
end

-- sysbench's API does not show the handshake's version: SELECT VERSION() is all it can read.
local function server_version()
   local v = value("SELECT VERSION()")
   if not v:find("%-shardgate$") then
      error("SELECT VERSION() is " .. v .. ", without -shardgate (the handshake is not visible to sysbench)", 0)
   end
   return v
end

local function insert()
   con:query("DROP TABLE IF EXISTS " .. T)
   con:query("CREATE TABLE " .. T .. " (id BIGINT PRIMARY KEY, name VARCHAR(64), n INT)")
   for i = 1, 10 do
      con:query(string.format("INSERT INTO %s (id, name, n) VALUES (%d, 'name%d', %d)", T, i, i, i * 10))
   end
   local stmt = con:prepare("INSERT INTO " .. T .. " (id, name, n) VALUES (?, ?, ?)")
   local id = stmt:bind_create(sysbench.sql.type.BIGINT)
   local name = stmt:bind_create(sysbench.sql.type.VARCHAR, 64)
   local n = stmt:bind_create(sysbench.sql.type.INT)
   stmt:bind_param(id, name, n)
   for i = 11, 20 do
      id:set(i)
      name:set("name" .. i)
      n:set(i * 10)
      stmt:execute() -- (the result of a prepared INSERT must not be read: sysbench crashes)
   end
   return "20 rows (10 plain, 10 prepared)"
end

local function read()
   local lag = eventually(function() expect(value("SELECT COUNT(*) FROM " .. T), "20", "COUNT(*)") end)
   local stmt = con:prepare("SELECT id, name, n FROM " .. T .. " WHERE id = ? AND name = ? AND n = ?")
   local id = stmt:bind_create(sysbench.sql.type.BIGINT)
   local name = stmt:bind_create(sysbench.sql.type.VARCHAR, 64)
   local n = stmt:bind_create(sysbench.sql.type.INT)
   stmt:bind_param(id, name, n)
   for i = 1, 20 do
      id:set(i)
      name:set("name" .. i)
      n:set(i * 10)
      local rs = stmt:execute()
      expect(rs.nrows, 1, "rows of prepared SELECT for id " .. i)
      rs:free()
   end
   local rs = con:query("SELECT id FROM " .. T .. " ORDER BY id LIMIT 5")
   local ids = {}
   for _ = 1, rs.nrows do table.insert(ids, rs:fetch_row()[1]) end
   rs:free()
   expect(table.concat(ids, ","), "1,2,3,4,5", "ORDER BY id LIMIT 5")
   local agg = row("SELECT SUM(n), MIN(id), MAX(id), AVG(n) FROM " .. T)
   expect(table.concat(agg, ",", 1, 4), "2100,1,20,105.0000", "SUM(n), MIN(id), MAX(id), AVG(n)")
   return "COUNT, 20 prepared reads by key, ORDER BY LIMIT, SUM/MIN/MAX/AVG" .. lag
end

local function count(id)
   return value(string.format("SELECT COUNT(*) FROM %s WHERE id = %d", T, id))
end

local function transactions()
   con:query("BEGIN")
   con:query("INSERT INTO " .. T .. " VALUES (101, 'name101', 1010)")
   con:query("COMMIT")
   local lag = eventually(function() expect(count(101), "1", "row 101 after COMMIT") end)
   con:query("BEGIN")
   con:query("INSERT INTO " .. T .. " VALUES (102, 'name102', 1020)")
   expect(count(102), "1", "row 102 inside its transaction")
   con:query("ROLLBACK")
   con:query("BEGIN")
   expect(count(102), "0", "row 102 after ROLLBACK")
   con:query("COMMIT")
   return "commit visible, rollback not visible" .. lag
end

local function last_insert_id()
   con:query("DROP TABLE IF EXISTS " .. AI)
   con:query("CREATE TABLE " .. AI .. " (id INT AUTO_INCREMENT PRIMARY KEY, v INT)")
   con:query("INSERT INTO " .. AI .. " (v) VALUES (1)")
   -- MAX(id) in a transaction, on the primary: a replica may not have the row yet.
   local function max_id()
      con:query("BEGIN")
      local m = value("SELECT MAX(id) FROM " .. AI)
      con:query("COMMIT")
      return m
   end
   local got = { value("SELECT LAST_INSERT_ID()"), max_id() }
   local stmt = con:prepare("INSERT INTO " .. AI .. " (v) VALUES (?)")
   local v = stmt:bind_create(sysbench.sql.type.INT)
   stmt:bind_param(v)
   v:set(2)
   stmt:execute()
   table.insert(got, value("SELECT LAST_INSERT_ID()"))
   table.insert(got, max_id())
   -- sysbench's API shows no insert id of its own: compare with the ids the rows got.
   expect(table.concat(got, ","), "1,1,2,2", "LAST_INSERT_ID(), MAX(id) after INSERT and prepared INSERT")
   return "LAST_INSERT_ID() = stored id = 1, 2"
end

local function duplicate()
   local ok, err = pcall(con.query, con, "INSERT INTO " .. T .. " VALUES (1, 'again', 0)")
   expect(ok, false, "duplicate INSERT succeeded")
   err = tostring(err)
   if not err:find("errno = 1062", 1, true) then error("want errno 1062, got: " .. err, 0) end
   local stmt = con:prepare("INSERT INTO " .. T .. " VALUES (?, 'again', 0)")
   local id = stmt:bind_create(sysbench.sql.type.BIGINT)
   stmt:bind_param(id)
   id:set(2)
   local pok, perr = pcall(stmt.execute, stmt)
   expect(pok, false, "duplicate prepared INSERT succeeded")
   perr = tostring(perr)
   if not perr:find("errno = 1062", 1, true) then error("prepared: want errno 1062, got: " .. perr, 0) end
   return "errno 1062 (plain and prepared)"
end

local function reconnect()
   con:disconnect()
   return connect() .. ", SELECT 1 = " .. value("SELECT 1")
end

function event()
   -- No garbage collection: every result object of a connection points at the same C struct,
   -- so the finaliser of a freed one would free it again.
   collectgarbage("stop")
   step(1, "connect", connect)
   step(2, "server_version", server_version)
   step(3, "insert", insert)
   step(4, "read", read)
   step(5, "transactions", transactions)
   step(6, "last_insert_id", last_insert_id)
   step(7, "duplicate_key", duplicate)
   step(8, "reconnect", reconnect)
   print("STEPS " .. (ok_all and "ok" or "fail"))
end
