"""The JSON Schemas of the API's bodies, for its OpenAPI document (JSON Schema 2020-12, as
OpenAPI 3.1 uses it). Each names every member a body has; the tests check every answer
against them."""

from __future__ import annotations

from typing import Any

TEXT: dict[str, Any] = {"type": "string"}
TIME: dict[str, Any] = {"type": ["string", "null"], "format": "date-time"}
#: A secret in the first answer only; ``null`` when the answer is replayed for its Idempotency-Key.
SHOWN_ONCE: dict[str, Any] = {"type": ["string", "null"]}
LINKS: dict[str, Any] = {"type": "object", "additionalProperties": {"type": ["string", "null"]}}


def ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def obj(required: list[str], **properties: Any) -> dict[str, Any]:
    return {"type": "object", "required": required, "properties": properties}


def listing(key: str, item: str) -> dict[str, Any]:
    return obj([key], **{key: {"type": "array", "items": ref(item)}})


def nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]}


CREDENTIALS = obj(["login", "password", "url", "command"], login=TEXT, password=TEXT, url=TEXT, command=TEXT)
DATABASE = obj(
    ["db_type", "name", "managed", "owner", "expires_at", "size_bytes", "credentials", "links"],
    db_type=TEXT, name=TEXT, managed={"type": "boolean"}, owner={"type": ["string", "null"]},
    course={"type": ["string", "null"]}, created_at=TIME, expires_at=TIME,
    size_bytes={"type": ["integer", "null"]}, credentials=nullable(ref("Credentials")), links=LINKS,
    summary=TEXT, read_only={"type": "boolean"},
)
OPERATION = obj(
    ["id", "kind", "target", "state", "progress", "result", "error", "started_by", "created_at", "links"],
    id=TEXT, kind=TEXT, target=TEXT,
    state={"type": "string", "enum": ["running", "succeeded", "failed", "cancelled", "interrupted"]},
    progress=obj(["done", "total", "current"], done={"type": "integer"}, total={"type": "integer"}, current=TEXT),
    result={}, error={"type": ["string", "null"]}, started_by=TEXT, created_at=TIME, heartbeat_at=TIME,
    finished_at=TIME, links=LINKS,
)
USER = obj(["name", "role", "quota", "databases", "links"], name=TEXT,
           role={"type": "string", "enum": ["instructor", "trainee"]}, quota={"type": "integer"},
           created_at=TIME, databases={"type": "array", "items": TEXT}, links=LINKS)
TOKEN = obj(["id", "name", "created_at", "last_used_at", "links"], id={"type": "integer"}, name=TEXT,
            created_at=TIME, last_used_at=TIME, links=LINKS)
SNAPSHOT = obj(["id", "label", "taken_at", "size_bytes", "links"], id={"type": "integer"}, label=TEXT,
               taken_at=TIME, size_bytes={"type": ["integer", "null"]}, links=LINKS)
ARCHIVE = obj(
    ["id", "db_type", "database", "owner", "created_at", "size_bytes", "sha256", "tables", "links"],
    id=TEXT, db_type=TEXT, database=TEXT, owner=TEXT, created_at=TEXT, size_bytes={"type": "integer"},
    sha256=TEXT, tables={"type": "object", "additionalProperties": {"type": "integer"}},
    server_version=TEXT, links=LINKS,
)
SERVER = obj(["db_type", "label", "where", "version", "health", "detail", "links"], db_type=TEXT, label=TEXT,
             where={"type": ["string", "null"]}, version={"type": ["string", "null"]},
             health={"type": "string", "enum": ["up", "unavailable"]}, detail={"type": ["string", "null"]},
             links=LINKS)
COURSE = obj(["name", "description", "db_types", "ready_copies", "links"], name=TEXT, description=TEXT,
             db_types={"type": "array", "items": TEXT},
             ready_copies={"type": "object", "additionalProperties": {"type": "integer"}}, links=LINKS)
AUDIT_ENTRY = obj(["id", "at", "actor", "action", "target", "outcome", "detail"], id={"type": "integer"}, at=TIME,
                  actor=TEXT, action=TEXT, target=TEXT, outcome=TEXT, detail=TEXT)
PROBLEM = obj(["type", "title", "status", "detail"], type=TEXT, title=TEXT, status={"type": "integer"},
              detail=TEXT, field=TEXT, etag=TEXT)
REPLY = obj(["status", "headers", "body"], status={"type": "integer"},
            headers={"type": "object", "additionalProperties": TEXT}, body={})
BATCH_OPERATION = {
    "type": "object", "required": ["method", "path"], "additionalProperties": False,
    "properties": {
        "method": {"type": "string", "enum": ["GET", "POST", "PATCH", "DELETE"]},
        "path": {"type": "string", "pattern": "^/api/v1/"},
        "body": {},
        "headers": {"type": "object", "additionalProperties": TEXT,
                    "propertyNames": {"enum": ["Idempotency-Key", "If-Match", "If-None-Match"]}},
    },
}


def closed(required: list[str], **properties: Any) -> dict[str, Any]:
    """A request body: only these members (anything else is a 400 naming it)."""
    return {**obj(required, **properties), "additionalProperties": False}


NAME = {"type": "string", "pattern": "^[a-z][a-z0-9_]{0,62}$"}

CELL: dict[str, Any] = {"type": ["string", "null"]}
CONSOLE_RESULT = obj(
    ["statement", "line", "columns", "rows", "more_rows", "cut", "status", "error", "error_line", "error_column",
     "seconds", "summary"],
    statement=TEXT, line={"type": "integer"}, columns={"type": "array", "items": TEXT},
    rows={"type": "array", "items": {"type": "array", "items": CELL}}, more_rows={"type": "integer"}, cut=TEXT,
    status=TEXT, error=TEXT, error_line={"type": ["integer", "null"]}, error_column={"type": ["integer", "null"]},
    seconds={"type": "number"}, summary=TEXT,
)
CONSOLE_RUN = obj(["id", "summary", "not_run", "note", "results"], id={"type": "integer"}, summary=TEXT,
                  not_run={"type": "integer"}, note=TEXT, results={"type": "array", "items": ref("ConsoleResult")})
CONSOLE_ENTRY = obj(["id", "sql", "actor", "state", "summary", "started_at"], id={"type": "integer"}, sql=TEXT,
                    actor=TEXT, state={"type": "string", "enum": ["running", "done"]}, summary=TEXT, started_at=TIME)

SCHEMAS: dict[str, dict[str, Any]] = {
    "Problem": PROBLEM,
    "Index": obj(["links"], links=LINKS, version=TEXT),
    "Credentials": CREDENTIALS,
    "Database": DATABASE,
    "DatabaseList": listing("databases", "Database"),
    "DatabaseCreate": closed(["db_type"], db_type=TEXT, name=NAME, course=TEXT, owner=TEXT),
    "DatabaseUpdate": closed([], expires_at=TIME, read_only={"type": "boolean"}),
    "Snapshot": SNAPSHOT,
    "SnapshotList": listing("snapshots", "Snapshot"),
    "SnapshotCreate": closed([], label={"type": "string", "maxLength": 80}),
    "Empty": closed([]),
    "ConsoleRunCreate": closed(["sql"], sql={"type": "string", "maxLength": 100_000}),
    "ConsoleResult": CONSOLE_RESULT,
    "ConsoleRun": CONSOLE_RUN,
    "ConsoleCancel": obj(["cancelled"], cancelled={"type": "integer"}),
    "ConsoleEntry": CONSOLE_ENTRY,
    "ConsoleHistory": listing("runs", "ConsoleEntry"),
    "Archive": ARCHIVE,
    "ArchiveList": listing("archives", "Archive"),
    "ArchiveCreate": closed(["db_type"], db_type=TEXT, name=NAME, drop={"type": "boolean"}),
    "ArchiveRestore": closed([], into=NAME),
    "Server": SERVER,
    "ServerList": listing("servers", "Server"),
    "Course": COURSE,
    "CourseList": listing("courses", "Course"),
    "CourseCreate": closed(["name"], name={"type": "string", "pattern": "^[a-z0-9_]{1,32}$"},
                           description={"type": "string", "maxLength": 200}, postgres_sql=TEXT, mysql_sql=TEXT),
    "CopiesCreate": closed(["db_type", "count"], db_type=TEXT, count={"type": "integer", "minimum": 1, "maximum": 200}),
    "ClassCreate": closed(["course", "db_type", "trainees"], course=TEXT, db_type=TEXT,
                          trainees={"type": "array", "items": TEXT, "minItems": 1, "maxItems": 500}),
    "Operation": OPERATION,
    "OperationList": listing("operations", "Operation"),
    "ClassList": listing("classes", "Operation"),
    "User": USER,
    "UserList": listing("users", "User"),
    "UserCreate": closed(["name"], name={"type": "string", "pattern": "^[a-z][a-z0-9_]{0,31}$"},
                         role={"type": "string", "enum": ["instructor", "trainee"]},
                         quota={"type": "integer", "minimum": 0, "maximum": 100},
                         password={"type": "string", "minLength": 10}),
    "UserUpdate": closed(["password"], password={"type": ["string", "null"], "minLength": 10}),
    "NewUser": {"allOf": [ref("User"), obj(["password"], password=SHOWN_ONCE)]},
    "Token": TOKEN,
    "TokenList": listing("tokens", "Token"),
    "TokenCreate": closed(["name"], name={"type": "string", "minLength": 1, "maxLength": 64}),
    "NewToken": {"allOf": [ref("Token"), obj(["token"], token=SHOWN_ONCE)]},
    "AuditEntry": AUDIT_ENTRY,
    "AuditPage": obj(["entries", "links"], entries={"type": "array", "items": ref("AuditEntry")}, links=LINKS),
    "Batch": closed(["operations"], operations={"type": "array", "items": BATCH_OPERATION, "minItems": 1}),
    "BatchResults": obj(["results"], results={"type": "array", "items": REPLY}),
    "ProblemKinds": obj(["problems"], problems={"type": "array", "items": obj(
        ["type", "status", "title"], type=TEXT, status={"type": "integer"}, title=TEXT)}),
}
