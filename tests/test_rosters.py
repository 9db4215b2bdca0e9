"""Rosters as LMSs and spreadsheets export them: which rows name trainees, and why the others do not.

No server is needed: a roster is read and checked before anything is made.
"""

from __future__ import annotations

import pytest

from dbwrapper.errors import InvalidInput
from dbwrapper.rosters import MAX_ROSTER, Skipped, check_names, read_roster

# Canvas's gradebook export: the full name first, the login in "SIS Login ID", a "Points Possible"
# row and the course's Test Student (no SIS login); Excel adds its byte-order mark.
CANVAS = (
    "\ufeffStudent,ID,SIS User ID,SIS Login ID,Section,Quiz 1 (101)\n"
    "    Points Possible,,,,,10.00\n"
    '"Doe, Jane",5101,S0042,jdoe,SQL 101 - A,8.00\n'
    '"Roe, Rick",5102,S0043,rroe,SQL 101 - A,9.50\n'
    '"Student, Test",5199,,,SQL 101 - A,\n'
)
# Moodle's bulk user upload (and its download of users): the login is "username".
MOODLE = "username,firstname,lastname,email\nana_p,Ana,Pérez,ana@example.org\nbo,Bo,Li,bo@example.org\n"
# Google Classroom's grades: names and e-mail addresses, no login at all.
CLASSROOM = "Last Name,First Name,Email Address\nDoe,Jane,jane.doe@example.org\nRoe,Rick,rick@example.org\n"
# Excel in much of Europe separates cells with ";".
EXCEL_FR = "Nom;Prénom;Login\nDupont;Jean;jdupont\nMartin;Léa;lmartin\n"


def test_a_plain_list_is_the_first_column_without_its_header_blanks_or_repeats():
    roster = read_roster("name,email\nalice,a@x\n\nbob,b@x\nalice,again\n")
    assert roster.names == ["alice", "bob"]
    assert roster.column == 'the column "name"'
    assert roster.skipped == [
        Skipped(1, "a header", "name, email"), Skipped(3, "blank", ""),
        Skipped(5, "alice again (row 2)", "alice, again"),
    ]


def test_a_list_without_a_header_keeps_its_first_row():
    roster = read_roster("alice\nbob\n")
    assert (roster.names, roster.column, roster.skipped) == (["alice", "bob"], "the first column", [])


@pytest.mark.parametrize("word", ["student", "Students", "login", "USERNAME", "user", "email", "id", "name",
                                  "trainee", "User Name", "E-mail", "SIS Login ID", "sis user id"])
def test_a_first_row_of_a_header_word_is_a_header_in_any_case(word):
    roster = read_roster(f"{word}\nalice\n")
    assert roster.names == ["alice"] and roster.skipped == [Skipped(1, "a header", word)]


def test_a_first_row_that_is_no_user_name_is_a_header_and_is_shown_left_out():
    roster = read_roster("Trainees of Tuesday\nalice\n")
    assert roster.names == ["alice"]
    assert roster.skipped == [Skipped(1, "a header", "Trainees of Tuesday")]


def test_a_canvas_export_gives_its_sis_logins_and_leaves_out_the_rows_without_one():
    roster = read_roster(CANVAS)
    assert roster.names == ["jdoe", "rroe"]
    assert roster.column == 'the column "SIS Login ID"'
    assert [(s.row, s.reason) for s in roster.skipped] == [
        (1, "a header"), (2, 'nothing in the column "SIS Login ID"'), (5, 'nothing in the column "SIS Login ID"'),
    ]
    assert roster.skipped[2].text == "Student, Test, 5199, SQL 101 - A"


def test_a_moodle_export_gives_its_usernames():
    assert read_roster(MOODLE).names == ["ana_p", "bo"]


def test_a_semicolon_separated_export_is_read_by_its_own_separator():
    roster = read_roster(EXCEL_FR)
    assert roster.names == ["jdupont", "lmartin"] and roster.column == 'the column "Login"'


def test_an_export_without_logins_is_refused_naming_the_column_read_and_every_bad_row():
    with pytest.raises(InvalidInput) as refused:
        read_roster(CLASSROOM)
    message = str(refused.value)
    assert message.startswith('2 row(s) of the roster hold no user name in the column "Last Name": '
                              "row 2 (Doe), row 3 (Roe). A user name is 1 to 32 characters")
    assert "login, username or SIS Login ID" in message  # what to do about it
    assert refused.value.http_status == 400


def test_a_bad_row_anywhere_refuses_the_roster_and_many_are_counted():
    with pytest.raises(InvalidInput, match=r"row 3 \(Bob\)\. A user name"):
        read_roster("alice\nbo_b\nBob\n")
    many = "\n".join(["login", *(f"Trainee {n}" for n in range(15))])
    with pytest.raises(InvalidInput, match=r"^15 row\(s\).*row 11 \(Trainee 9\) and 5 more\."):
        read_roster(many)


def test_a_roster_of_nobody_or_of_too_many_is_refused():
    for empty in ("", "name\n\n", "\ufeff", ",,,\n"):
        with pytest.raises(InvalidInput, match="names no trainee"):
            read_roster(empty)
    assert len(read_roster("\n".join(f"t{n}" for n in range(MAX_ROSTER))).names) == MAX_ROSTER
    with pytest.raises(InvalidInput, match=f"at most {MAX_ROSTER} trainees; this one names {MAX_ROSTER + 1}"):
        read_roster("\n".join(f"t{n}" for n in range(MAX_ROSTER + 1)))


def test_text_that_is_not_csv_is_refused_with_the_reason():
    with pytest.raises(InvalidInput, match="not a CSV file: unexpected end of data, on line 2"):
        read_roster('name\n"alice\n')


def test_names_given_as_a_list_are_held_to_the_same_rules():
    assert check_names([" alice ", "bob", "", "alice"]) == ["alice", "bob"]
    with pytest.raises(InvalidInput, match="Not user names: 'Not-A-Name'") as refused:
        check_names(["alice", "Not-A-Name"], "trainees")
    assert refused.value.field == "trainees"
    with pytest.raises(InvalidInput, match="names no trainee"):
        check_names([" "])
