// Opens an in-memory SQLite database through SOCI: compiles only if the SOCI
// adapter target carries SOCI's include paths, links only if it carries its libraries.
#include <soci/soci.h>
#include <soci/sqlite3/soci-sqlite3.h>

#include <string>

int soci_round_trip() {
    soci::session sql(soci::sqlite3, ":memory:");
    sql << "create table t (v integer)";
    sql << "insert into t (v) values (41)";
    int v = 0;
    sql << "select v + 1 from t", soci::into(v);
    return v;
}
