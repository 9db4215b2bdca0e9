"""Courses, classes and the operations that make them, as resources."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dbwrapper.api import fields
from dbwrapper.api.replies import accepted, created, ok, operation_json
from dbwrapper.api.routing import PREFIX, Call, Reply, Route
from dbwrapper.errors import InvalidInput, NotFound
from dbwrapper.registry.models import Course
from dbwrapper.rosters import check_names, read_roster

if TYPE_CHECKING:
    from dbwrapper.api.handling import Api

OPERATION_STATES = ("running", "succeeded", "failed", "cancelled", "interrupted")


def course_path(name: str) -> str:
    return f"{PREFIX}/courses/{name}"


def course_json(api: Api, course: Course) -> dict[str, Any]:
    db_types = [t for t in api.runtime.service.servers.db_types if course.sql(t)]
    return {
        "name": course.name, "description": course.description, "db_types": db_types,
        "ready_copies": api.runtime.courses.ready_spares(course.name),
        "links": {"self": course_path(course.name), "copies": course_path(course.name) + "/copies"},
    }


def list_courses(api: Api, call: Call) -> Reply:
    return ok({"courses": [course_json(api, course) for course in api.runtime.courses.all()]})


def find_course(api: Api, name: str) -> Course:
    course = api.runtime.courses.registry.course(name)
    if course is None:
        raise NotFound(f"There is no course {name}.")
    return course


def get_course(api: Api, call: Call, name: str) -> Reply:
    return ok(course_json(api, find_course(api, name)))


def create_course(api: Api, call: Call) -> Reply:
    """Define a course from SQL per engine (instructors)."""
    body = call.fields()
    sql = {db_type: fields.text(body, f"{db_type}_sql", "") for db_type in ("postgres", "mysql")}
    course = api.runtime.courses.add(
        call.actor, fields.text(body, "name"), fields.text(body, "description", ""),
        {db_type: text for db_type, text in sql.items() if text},
    )
    return created(course_json(api, course), course_path(course.name))


def prepare_copies(api: Api, call: Call, name: str) -> Reply:
    """Prepare ready copies before a class (an operation); one already at work is answered instead."""
    body = call.fields()
    operation, _ = api.runtime.operations.start_preparation(
        call.actor, fields.text(body, "db_type"), find_course(api, name).name, fields.number(body, "count"),
    )
    return accepted(operation)


def provision_class(api: Api, call: Call) -> Reply:
    """A class from a roster: JSON ``{"course", "db_type", "trainees": [...]}``, or a CSV body
    (``text/csv``, one user name per row) with ``course`` and ``db_type`` in the query."""
    if call.content_type == "text/csv":
        course, db_type = fields.text(call.query, "course"), fields.text(call.query, "db_type")
        names = read_roster(call.body if isinstance(call.body, str) else "").names
    else:
        body = call.fields()
        course, db_type = fields.text(body, "course"), fields.text(body, "db_type")
        trainees = body.get("trainees")
        if not isinstance(trainees, list) or not all(isinstance(name, str) for name in trainees):
            raise InvalidInput("trainees is a list of user names.", "trainees")
        names = check_names(trainees, "trainees")
    return accepted(api.runtime.operations.start_class(call.actor, names, course, db_type))


def list_classes(api: Api, call: Call) -> Reply:
    call.actor.require_instructor("follow a class provisioning")
    return ok({"classes": [operation_json(op) for op in api.runtime.operations.list(call.actor, kind="class")]})


def get_class(api: Api, call: Call, operation: str) -> Reply:
    call.actor.require_instructor("follow a class provisioning")
    return ok(operation_json(api.runtime.operations.get(call.actor, operation, kind="class")))


def list_operations(api: Api, call: Call) -> Reply:
    query = call.query
    if query.get("state") not in (None, *OPERATION_STATES):
        raise InvalidInput(f"state is one of {', '.join(OPERATION_STATES)}.", "state")
    found = api.runtime.operations.list(
        call.actor, state=query.get("state"), kind=query.get("kind"), started_by=query.get("started_by"),
    )
    return ok({"operations": [operation_json(op) for op in found]})


def get_operation(api: Api, call: Call, operation: str) -> Reply:
    return ok(operation_json(api.runtime.operations.get(call.actor, operation)))


def cancel_operation(api: Api, call: Call, operation: str) -> Reply:
    """Ask a running operation to stop at its next step; one that ended is answered as it is."""
    return ok(operation_json(api.runtime.operations.cancel(call.actor, operation)))


ROUTES = [
    Route("GET", "/courses", list_courses, "The courses, with their ready copies per engine", response="CourseList"),
    Route("POST", "/courses", create_course, "Define a course from SQL per engine (instructors)",
          request="CourseCreate", response="Course", status=201, errors=(403,)),
    Route("GET", "/courses/{name}", get_course, "A course", response="Course", errors=(404,)),
    Route("POST", "/courses/{name}/copies", prepare_copies,
          "Prepare ready copies before a class (an operation; instructors)", request="CopiesCreate",
          response="Operation", status=202, errors=(403, 404, 409)),
    Route("GET", "/classes", list_classes, "Class provisionings, newest first (instructors)",
          response="ClassList", errors=(403,)),
    Route("POST", "/classes", provision_class,
          "Provision a class from a roster, as JSON or CSV (an operation; instructors)", request="ClassCreate",
          response="Operation", status=202, errors=(403,), csv=True, query={
              "course": ({"type": "string"}, "With a CSV roster: the course"),
              "db_type": ({"type": "string"}, "With a CSV roster: the server"),
          }),
    Route("GET", "/classes/{operation}", get_class, "A class provisioning: progress, then every trainee's credentials",
          response="Operation", errors=(403, 404)),
    Route("GET", "/operations", list_operations, "Operations you may see, newest first", response="OperationList",
          query={
              "state": ({"type": "string", "enum": list(OPERATION_STATES)}, "Only in this state"),
              "kind": ({"type": "string"}, "Only of this kind (class, prepare, snapshot, revert, reset, archive, "
                                           "restore, bulk extend, bulk reset, bulk archive)"),
              "started_by": ({"type": "string"}, "Only those this user started"),
          }),
    Route("GET", "/operations/{operation}", get_operation, "An operation: its state, progress and result",
          response="Operation", errors=(404,)),
    Route("POST", "/operations/{operation}/cancel", cancel_operation, "Ask an operation to stop at its next step",
          request="Empty", response="Operation", errors=(404,)),
]
