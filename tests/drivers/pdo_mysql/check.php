<?php
// Driver check: PHP PDO MySQL (mysqlnd) through shardgate, with real server-side prepared
// statements (PDO::ATTR_EMULATE_PREPARES => false). Prints `STEP <n> <name> ok|fail <detail>`
// per step and `DRIVER pdo_mysql <version> ok|fail` last; exits 0 iff every step passed.
// Reads SG_HOST, SG_PORT, SG_USER, SG_PASS, SG_DB, SG_TABLE, SG_AI_TABLE from the environment.
//
// Reads outside a transaction go to a replica, which applies the primary's writes asynchronously:
// checks that follow writes wait for them (eventually(), at most 5 s) and say how long that took;
// checks that a row is absent read inside a transaction, which shardgate sends to the primary.
declare(strict_types=1);

final class Fail extends Exception
{
}

$T = getenv('SG_TABLE');
$AI = getenv('SG_AI_TABLE');
$pdo = null;
$allOk = true;

function connect(): PDO
{
    $dsn = sprintf('mysql:host=%s;port=%s;dbname=%s;charset=utf8mb4', getenv('SG_HOST'), getenv('SG_PORT'), getenv('SG_DB'));
    return new PDO($dsn, getenv('SG_USER'), getenv('SG_PASS'), [
        PDO::ATTR_ERRMODE => PDO::ERRMODE_EXCEPTION,
        PDO::ATTR_EMULATE_PREPARES => false,
        PDO::ATTR_TIMEOUT => 10,
    ]);
}

function db(): PDO
{
    global $pdo;
    if ($pdo === null) {
        throw new Fail('no connection (connect failed)');
    }
    return $pdo;
}

function expect(bool $cond, string $what): void
{
    if (!$cond) {
        throw new Fail($what);
    }
}

// Runs $probe until it stops failing a check, for at most 5 s; the milliseconds waited (0: none).
function eventually(callable $probe): int
{
    $t0 = hrtime(true);
    for ($tries = 0; ; $tries++) {
        try {
            $probe();
            return $tries === 0 ? 0 : max(1, intdiv(hrtime(true) - $t0, 1000000));
        } catch (Fail $e) {
            if (hrtime(true) - $t0 > 5000000000) {
                throw $e;
            }
            usleep(10000);
        }
    }
}

function lagNote(int $ms): string
{
    return $ms > 0 ? " (replicas caught up after $ms ms)" : '';
}

function describe(Throwable $e): string
{
    if ($e instanceof PDOException) {
        $info = $e->errorInfo ?? [];
        return sprintf('PDOException error %s sqlstate %s: %s', $info[1] ?? '?', $info[0] ?? $e->getCode(), $e->getMessage());
    }
    if ($e instanceof Fail) {
        return $e->getMessage();
    }
    return get_class($e) . ': ' . $e->getMessage();
}

function step(int $n, string $name, callable $fn): void
{
    global $allOk;
    try {
        $line = 'ok ' . $fn();
    } catch (Throwable $e) {
        $allOk = false;
        $line = 'fail ' . describe($e);
    }
    echo "STEP $n $name " . preg_replace('/\s+/', ' ', $line) . "\n";
}

// The one row and column of a text-protocol query.
function scalar(string $sql): string
{
    $rows = db()->query($sql)->fetchAll(PDO::FETCH_NUM);
    expect(count($rows) === 1, "$sql: " . count($rows) . ' rows, expected 1');
    expect($rows[0][0] !== null, "$sql: NULL");
    return (string)$rows[0][0];
}

// The row with key $id as "name,n" (prepared), or null.
function rowById(int $id): ?string
{
    global $T;
    $st = db()->prepare("SELECT name, n FROM $T WHERE id = ?");
    $st->execute([$id]);
    $row = $st->fetch(PDO::FETCH_NUM);
    return $row === false ? null : "$row[0],$row[1]";
}

function insertRow(PDOStatement $st, int $id, string $name, int $n): void
{
    $st->bindValue(1, $id, PDO::PARAM_INT);
    $st->bindValue(2, $name, PDO::PARAM_STR);
    $st->bindValue(3, $n, PDO::PARAM_INT);
    $st->execute();
    expect($st->rowCount() === 1, "prepared INSERT of id $id reported {$st->rowCount()} rows");
}

step(1, 'connect', function () {
    global $pdo;
    $pdo = connect();
    return 'emulate_prepares=' . var_export($pdo->getAttribute(PDO::ATTR_EMULATE_PREPARES), true);
});

step(2, 'server_version', function () {
    $v = db()->getAttribute(PDO::ATTR_SERVER_VERSION);
    // ATTR_SERVER_INFO asks the server (COM_STATISTICS).
    $info = db()->getAttribute(PDO::ATTR_SERVER_INFO);
    expect(is_string($v) && str_ends_with($v, '-shardgate'), "server version '$v' does not end with -shardgate");
    return "version=$v client=" . db()->getAttribute(PDO::ATTR_CLIENT_VERSION) . " server_info='$info'";
});

step(3, 'insert', function () use ($T) {
    db()->exec("DROP TABLE IF EXISTS $T");
    db()->exec("CREATE TABLE $T (id BIGINT PRIMARY KEY, name VARCHAR(64), n INT)");
    $values = [];
    for ($id = 1; $id <= 10; $id++) {
        $values[] = sprintf("(%d, 'name-%d', %d)", $id, $id, $id * 10);
    }
    $rows = db()->exec("INSERT INTO $T (id, name, n) VALUES " . implode(', ', $values));
    expect($rows === 10, "exec INSERT of ids 1..10 reported $rows rows, expected 10");
    $st = db()->prepare("INSERT INTO $T (id, name, n) VALUES (?, ?, ?)");
    for ($id = 11; $id <= 20; $id++) {
        insertRow($st, $id, "name-$id", $id * 10);
    }
    return 'ids 1..10 by exec, 11..20 by prepare/execute';
});

step(4, 'read', function () use ($T) {
    $waited = eventually(function () use ($T) {
        $count = scalar("SELECT COUNT(*) FROM $T");
        expect($count === '20', "SELECT COUNT(*) gave $count, expected 20");
    });
    $st = db()->prepare("SELECT id, name, n FROM $T WHERE id = ?");
    for ($id = 1; $id <= 20; $id++) {
        $st->execute([$id]);
        $rows = $st->fetchAll(PDO::FETCH_NUM);
        expect(count($rows) === 1, "prepared SELECT WHERE id = $id: " . count($rows) . ' rows, expected 1');
        $got = implode(',', $rows[0]);
        $want = "$id,name-$id," . $id * 10;
        expect($got === $want, "prepared SELECT WHERE id = $id: got $got, expected $want");
    }
    $ids = implode(',', db()->query("SELECT id FROM $T ORDER BY id LIMIT 5")->fetchAll(PDO::FETCH_COLUMN));
    expect($ids === '1,2,3,4,5', "SELECT id ORDER BY id LIMIT 5 gave [$ids], expected [1,2,3,4,5]");
    $sum = scalar("SELECT SUM(n) FROM $T");
    expect($sum === '2100', "SELECT SUM(n) gave $sum, expected 2100");
    $st = db()->prepare("SELECT id FROM $T WHERE n >= ? ORDER BY id DESC LIMIT 3");
    $st->execute([50]);
    $top = implode(',', $st->fetchAll(PDO::FETCH_COLUMN));
    expect($top === '20,19,18', "prepared SELECT id WHERE n >= 50 ORDER BY id DESC LIMIT 3 gave [$top], expected [20,19,18]");
    return "20 rows by key (prepared), COUNT(*)=20, first ids [$ids], SUM(n)=2100, prepared scatter top 3 [$top]" . lagNote($waited);
});

step(5, 'transactions', function () use ($T) {
    $ins = db()->prepare("INSERT INTO $T (id, name, n) VALUES (?, ?, ?)");
    try {
        db()->beginTransaction();
        insertRow($ins, 101, 'committed', 1);
        expect(rowById(101) === 'committed,1', 'id 101 not visible inside its own transaction');
        db()->commit();
        $waited = eventually(function () {
            $after = rowById(101);
            expect($after === 'committed,1', "id 101 after COMMIT: got $after, expected committed,1");
        });

        db()->beginTransaction();
        insertRow($ins, 102, 'rolled-back', 2);
        expect(rowById(102) !== null, 'id 102 not visible inside its own transaction');
        db()->rollBack();
        // Read inside a transaction, on the primary: a lagging replica cannot hide the row.
        db()->beginTransaction();
        $gone = rowById(102);
        expect($gone === null, "id 102 after ROLLBACK: got $gone, expected no row");
        db()->commit();
    } finally {
        if (db()->inTransaction()) {
            db()->rollBack();
        }
    }
    return 'beginTransaction+commit: id 101 visible; beginTransaction+rollBack: id 102 absent' . lagNote($waited);
});

step(6, 'last_insert_id', function () use ($AI) {
    db()->exec("DROP TABLE IF EXISTS $AI");
    db()->exec("CREATE TABLE $AI (id INT AUTO_INCREMENT PRIMARY KEY, v INT)");
    db()->exec("INSERT INTO $AI (v) VALUES (1)");
    $plain = db()->lastInsertId();
    $lii = scalar('SELECT LAST_INSERT_ID()');
    expect($plain === $lii, "exec INSERT: lastInsertId() $plain but SELECT LAST_INSERT_ID() = $lii");
    $st = db()->prepare("INSERT INTO $AI (v) VALUES (?)");
    $st->execute([2]);
    $prepared = db()->lastInsertId();
    $lii2 = scalar('SELECT LAST_INSERT_ID()');
    expect($prepared === $lii2, "prepared INSERT: lastInsertId() $prepared but SELECT LAST_INSERT_ID() = $lii2");
    expect((int)$prepared > (int)$plain, "prepared INSERT: lastInsertId() $prepared not above the first $plain");
    return "lastInsertId() $plain (exec), $prepared (prepared) = LAST_INSERT_ID()";
});

step(7, 'duplicate_key', function () use ($T) {
    $seen = [];
    $attempts = [
        'exec' => fn () => db()->exec("INSERT INTO $T (id, name, n) VALUES (1, 'dup', 0)"),
        'prepared' => fn () => db()->prepare("INSERT INTO $T (id, name, n) VALUES (?, ?, ?)")->execute([2, 'dup', 0]),
    ];
    foreach ($attempts as $how => $run) {
        try {
            $run();
            throw new Fail("$how INSERT of a duplicate id succeeded");
        } catch (PDOException $e) {
            $code = $e->errorInfo[1] ?? null;
            expect($code === 1062, "$how INSERT of a duplicate id: " . describe($e) . ', expected error 1062');
            $seen[] = "$how: {$e->errorInfo[1]}/{$e->errorInfo[0]}";
        }
    }
    expect(scalar('SELECT 1') === '1', 'SELECT 1 after the errors did not give 1');
    return implode(', ', $seen) . '; connection still usable';
});

step(8, 'reconnect', function () {
    global $pdo;
    $pdo = null; // PDO closes the connection when the last reference goes
    $pdo = connect();
    $one = scalar('SELECT 1');
    expect($one === '1', "SELECT 1 gave $one");
    return 'closed, connected again, SELECT 1 ok';
});

$pdo = null;
echo 'DRIVER pdo_mysql ' . phpversion('pdo_mysql') . ($allOk ? ' ok' : ' fail') . "\n";
exit($allOk ? 0 : 1);
