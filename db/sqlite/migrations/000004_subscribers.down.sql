DROP TABLE IF EXISTS subscriber_dead_letter;
DROP TABLE IF EXISTS subscriber;
