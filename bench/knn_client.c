/*
 * knn_client: a minimal C client for the single-connection figures of
 * bench/hnsw_bench.py and bench/sq8_bench.py. It prepares one k-NN statement
 * on one libpq connection (PG* environment variables) and runs it over query
 * vectors sent in binary, either serially (one query in flight: the
 * "1 connection" figure, with the Python client's per-query cost taken out)
 * or in libpq pipeline mode (up to DEPTH queries in flight on the same
 * connection, each followed by its own Sync, so that the server never waits
 * for the client).
 *
 *   knn_client QUERIES SQL ROUNDS DEPTH [SETTING...] [> ids]
 *
 * QUERIES: a file of the vectors' binary send format (uint16 dim, uint16 0,
 * dim float4, all big-endian), concatenated; every vector has the same dim.
 * SQL: the statement, with $1 the query vector (typed as vector), returning
 * one int4 column. ROUNDS: passes over the queries (a warm-up pass comes
 * first). DEPTH 0: serial; DEPTH >= 1: pipeline mode with that many queries
 * in flight. SETTING: statements run first (e.g. "SET hnsw.ef_search = 40").
 *
 * Prints one line per round on stderr ("round R: Q q/s") and, on stdout,
 * the ids each query of the last round returned, one line per query, so that
 * the caller can check them against exact results. Exit status 1 on any
 * error.
 */
#include <arpa/inet.h>
#include <libpq-fe.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double Now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void Die(PGconn* conn, const char* what) {
  fprintf(stderr, "knn_client: %s: %s", what, conn != NULL ? PQerrorMessage(conn) : "\n");
  if (conn != NULL) PQfinish(conn);
  exit(1);
}

/* Appends the ids of a TUPLES_OK result to line (space separated). */
static void TakeIds(PGconn* conn, PGresult* res, char* line, size_t cap) {
  if (PQresultStatus(res) != PGRES_TUPLES_OK) Die(conn, "query failed");
  size_t used = 0;
  line[0] = '\0';
  for (int i = 0; i < PQntuples(res); i++) {
    if (PQgetlength(res, i, 0) != 4) Die(NULL, "the statement must return one int4 column");
    uint32_t be;
    memcpy(&be, PQgetvalue(res, i, 0), 4);
    int n = snprintf(line + used, cap - used, "%s%d", i > 0 ? " " : "", (int32_t)ntohl(be));
    if (n < 0 || (size_t)n >= cap - used) break;
    used += (size_t)n;
  }
}

int main(int argc, char** argv) {
  if (argc < 5) {
    fprintf(stderr, "usage: knn_client QUERIES SQL ROUNDS DEPTH [SETTING...]\n");
    return 2;
  }
  const int rounds = atoi(argv[3]);
  const int depth = atoi(argv[4]);
  if (rounds < 1 || depth < 0 || depth > 256) {
    fprintf(stderr, "knn_client: ROUNDS must be >= 1 and DEPTH in 0..256\n");
    return 2;
  }

  FILE* f = fopen(argv[1], "rb");
  if (f == NULL) {
    perror(argv[1]);
    return 1;
  }
  unsigned char head[4];
  if (fread(head, 1, 4, f) != 4) Die(NULL, "empty query file");
  const size_t dim = ((size_t)head[0] << 8) | head[1];
  const size_t qlen = 4 + 4 * dim;
  fseek(f, 0, SEEK_END);
  const long size = ftell(f);
  fseek(f, 0, SEEK_SET);
  if (dim == 0 || size <= 0 || (size_t)size % qlen != 0) Die(NULL, "query file is not a sequence of equal vectors");
  const int nq = (int)((size_t)size / qlen);
  char* data = malloc((size_t)size);
  if (data == NULL || fread(data, 1, (size_t)size, f) != (size_t)size) Die(NULL, "cannot read the query file");
  fclose(f);

  PGconn* conn = PQconnectdb("");
  if (PQstatus(conn) != CONNECTION_OK) Die(conn, "connection failed");
  for (int i = 5; i < argc; i++) {
    PGresult* r = PQexec(conn, argv[i]);
    if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK) Die(conn, argv[i]);
    PQclear(r);
  }
  PGresult* r = PQexec(conn, "SELECT 'vector'::regtype::oid");
  if (PQresultStatus(r) != PGRES_TUPLES_OK) Die(conn, "type vector");
  const Oid vector_oid = (Oid)strtoul(PQgetvalue(r, 0, 0), NULL, 10);
  PQclear(r);
  r = PQprepare(conn, "knn", argv[2], 1, &vector_oid);
  if (PQresultStatus(r) != PGRES_COMMAND_OK) Die(conn, "prepare");
  PQclear(r);

  char** ids = calloc((size_t)nq, sizeof(char*));
  for (int i = 0; i < nq; i++) ids[i] = calloc(1, 4096);
  const int format = 1;
  const int plen = (int)qlen;

  for (int round = 0; round <= rounds; round++) {  /* round 0 warms up */
    const double t0 = Now();
    if (depth == 0) {
      for (int q = 0; q < nq; q++) {
        const char* param = data + (size_t)q * qlen;
        PGresult* res = PQexecPrepared(conn, "knn", 1, &param, &plen, &format, 1);
        TakeIds(conn, res, ids[q], 4096);
        PQclear(res);
      }
    } else {
      if (!PQenterPipelineMode(conn)) Die(conn, "pipeline mode");
      int sent = 0, done = 0;
      while (done < nq) {
        while (sent < nq && sent - done < depth) {
          const char* param = data + (size_t)sent * qlen;
          if (!PQsendQueryPrepared(conn, "knn", 1, &param, &plen, &format, 1) || !PQpipelineSync(conn))
            Die(conn, "send");
          sent++;
        }
        /* One query's result, then its Sync. */
        PGresult* res = PQgetResult(conn);
        if (res == NULL) Die(conn, "missing result");
        TakeIds(conn, res, ids[done], 4096);
        PQclear(res);
        while ((res = PQgetResult(conn)) != NULL) PQclear(res); /* end of this query */
        res = PQgetResult(conn);
        if (res == NULL || PQresultStatus(res) != PGRES_PIPELINE_SYNC) Die(conn, "missing sync");
        PQclear(res);
        done++;
      }
      if (!PQexitPipelineMode(conn)) Die(conn, "leaving pipeline mode");
    }
    const double wall = Now() - t0;
    if (round > 0) fprintf(stderr, "round %d: %.1f q/s\n", round, (double)nq / wall);
  }
  for (int q = 0; q < nq; q++) printf("%s\n", ids[q]);
  PQfinish(conn);
  return 0;
}
