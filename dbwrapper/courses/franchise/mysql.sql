-- The franchise course: stores that sell office supplies (the seed's "boxes of paper clips").
-- Loaded by the trainee's own login into their new database.
CREATE TABLE stores (
    id      INTEGER PRIMARY KEY,
    city    VARCHAR(40) NOT NULL,
    opened  DATE NOT NULL
) ENGINE=InnoDB;

CREATE TABLE items (
    id      INTEGER PRIMARY KEY,
    name    VARCHAR(60) NOT NULL UNIQUE,
    price   DECIMAL(8, 2) NOT NULL CHECK (price > 0)
) ENGINE=InnoDB;

CREATE TABLE stock (
    store_id INTEGER NOT NULL,
    item_id  INTEGER NOT NULL,
    boxes    INTEGER NOT NULL CHECK (boxes >= 0),
    PRIMARY KEY (store_id, item_id),
    FOREIGN KEY (store_id) REFERENCES stores (id),
    FOREIGN KEY (item_id) REFERENCES items (id)
) ENGINE=InnoDB;

CREATE TABLE orders (
    id        INTEGER PRIMARY KEY,
    store_id  INTEGER NOT NULL,
    item_id   INTEGER NOT NULL,
    boxes     INTEGER NOT NULL CHECK (boxes > 0),
    placed_at DATETIME NOT NULL,
    FOREIGN KEY (store_id) REFERENCES stores (id),
    FOREIGN KEY (item_id) REFERENCES items (id),
    INDEX orders_by_store (store_id, placed_at)
) ENGINE=InnoDB;

INSERT INTO stores
WITH RECURSIVE n (n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM n WHERE n < 40)
SELECT n,
       CONCAT(ELT(1 + (n - 1) % 8, 'Boston', 'Denver', 'Austin', 'Portland', 'Chicago', 'Atlanta', 'Phoenix', 'Omaha'),
              ' ', (n - 1) DIV 8 + 1),
       DATE_ADD('2020-01-01', INTERVAL (n * 37) % 1500 DAY)
FROM n;

INSERT INTO items
WITH RECURSIVE n (n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM n WHERE n < 200)
SELECT n,
       CONCAT(ELT(1 + (n - 1) % 8, 'paper clips', 'staples', 'binders', 'pens', 'pencils', 'folders', 'notepads', 'tape'),
              ', pack ', n),
       ROUND(1.5 + (n * 7) % 40, 2)
FROM n;

INSERT INTO stock
SELECT s.id, i.id, (s.id * 31 + i.id * 17) % 120 FROM stores s CROSS JOIN items i;

-- 200 x 100 rows from a shallow recursion: MySQL stops recursive CTEs at 1000 levels.
INSERT INTO orders
WITH RECURSIVE d (n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM d WHERE n < 199),
     o (n) AS (SELECT a.n * 100 + b.n + 1 FROM d a JOIN d b ON b.n < 100)
SELECT n, 1 + n % 40, 1 + (n * 13) % 200, 1 + n % 60,
       DATE_ADD('2024-01-01', INTERVAL n * 3607 SECOND)
FROM o;

CREATE VIEW low_stock AS
SELECT s.city, i.name, st.boxes
FROM stock st JOIN stores s ON s.id = st.store_id JOIN items i ON i.id = st.item_id
WHERE st.boxes < 10;
