"""The command line does what the pages do, through the same service layer."""

from __future__ import annotations


def test_create_list_destroy_on_the_command_line(cli, db_type, db_name, catalog):
    created = cli("create", "--db-type", db_type, "--name", db_name)
    assert created.returncode == 0, created.stderr
    assert f"Created {db_name}" in created.stdout
    assert "Connect with: " in created.stdout
    # Then the server's databases, this one marked.
    assert any(db_name in line and "<- this one" in line for line in created.stdout.splitlines())
    assert db_name in catalog(db_type)

    again = cli("create", "--db-type", db_type, "--name", db_name)
    assert again.returncode == 0
    assert f"{db_name} already exists" in again.stdout

    listed = cli("list", "--db-type", db_type)
    assert listed.returncode == 0
    line = next(line for line in listed.stdout.splitlines() if db_name in line)
    assert "dbwrapper" in line

    destroyed = cli("destroy", "--db-type", db_type, "--name", db_name)
    assert destroyed.returncode == 0, destroyed.stderr
    assert f"Dropped {db_name}" in destroyed.stdout
    assert db_name not in catalog(db_type)


def test_the_default_name_comes_from_the_template_and_port(cli, db_type, catalog):
    try:
        created = cli("create", "--db-type", db_type)
        assert created.returncode == 0, created.stderr
        assert "cwcuser_7001" in catalog(db_type)
    finally:
        cli("destroy", "--db-type", db_type)
    assert "cwcuser_7001" not in catalog(db_type)


def test_a_hostile_name_exits_2_with_the_reason(cli, db_type, catalog):
    before = catalog(db_type)
    result = cli("create", "--db-type", db_type, "--name", "x; DROP DATABASE test")
    assert result.returncode == 2
    assert "is not allowed" in result.stderr
    assert "Traceback" not in result.stderr
    assert catalog(db_type) == before


def test_an_unknown_backend_exits_2_naming_the_valid_ones(cli):
    result = cli("list", "--db-type", "oracle")
    assert result.returncode == 2
    assert "valid values: postgres, mysql" in result.stderr


def test_the_servers_own_database_is_refused_with_exit_4(cli, db_type, catalog):
    system = {"postgres": "postgres", "mysql": "mysql"}[db_type]
    result = cli("destroy", "--db-type", db_type, "--name", system)
    assert result.returncode == 4
    assert "never dropped" in result.stderr
    assert system in catalog(db_type)


def test_every_command_takes_a_config_file(cli, tmp_path, db_type):
    conf = tmp_path / "class.conf"
    conf.write_text('[global]\nserver.socket_port = 7100\n')
    listed = cli("list", "--db-type", db_type, "--config", str(conf))
    assert listed.returncode == 0, listed.stderr
    assert "Databases on" in listed.stdout
    missing = cli("list", "--db-type", db_type, "--config", str(tmp_path / "nope.conf"))
    assert missing.returncode == 2
    assert "Cannot read the config file" in missing.stderr
