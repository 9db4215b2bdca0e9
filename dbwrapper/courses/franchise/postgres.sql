-- The franchise course: stores that sell office supplies (the seed's "boxes of paper clips").
-- Loaded by the trainee's own login into their new database, so they own every object.
CREATE TABLE stores (
    id      integer PRIMARY KEY,
    city    varchar(40) NOT NULL,
    opened  date NOT NULL
);

CREATE TABLE items (
    id      integer PRIMARY KEY,
    name    varchar(60) NOT NULL UNIQUE,
    price   numeric(8, 2) NOT NULL CHECK (price > 0)
);

CREATE TABLE stock (
    store_id integer NOT NULL REFERENCES stores (id),
    item_id  integer NOT NULL REFERENCES items (id),
    boxes    integer NOT NULL CHECK (boxes >= 0),
    PRIMARY KEY (store_id, item_id)
);

CREATE TABLE orders (
    id        integer PRIMARY KEY,
    store_id  integer NOT NULL REFERENCES stores (id),
    item_id   integer NOT NULL REFERENCES items (id),
    boxes     integer NOT NULL CHECK (boxes > 0),
    placed_at timestamp NOT NULL
);
CREATE INDEX orders_by_store ON orders (store_id, placed_at);

INSERT INTO stores
SELECT n, (ARRAY['Boston', 'Denver', 'Austin', 'Portland', 'Chicago', 'Atlanta', 'Phoenix', 'Omaha'])[1 + (n - 1) % 8]
          || ' ' || ((n - 1) / 8 + 1),
       date '2020-01-01' + (n * 37) % 1500
FROM generate_series(1, 40) AS n;

INSERT INTO items
SELECT n, (ARRAY['paper clips', 'staples', 'binders', 'pens', 'pencils', 'folders', 'notepads', 'tape'])[1 + (n - 1) % 8]
          || ', pack ' || n,
       round((1.5 + (n * 7) % 40)::numeric, 2)
FROM generate_series(1, 200) AS n;

INSERT INTO stock
SELECT s, i, (s * 31 + i * 17) % 120
FROM generate_series(1, 40) AS s, generate_series(1, 200) AS i;

INSERT INTO orders
SELECT n, 1 + n % 40, 1 + (n * 13) % 200, 1 + n % 60,
       timestamp '2024-01-01' + (n * 3607) * interval '1 second'
FROM generate_series(1, 20000) AS n;

CREATE VIEW low_stock AS
SELECT s.city, i.name, st.boxes
FROM stock st JOIN stores s ON s.id = st.store_id JOIN items i ON i.id = st.item_id
WHERE st.boxes < 10;
