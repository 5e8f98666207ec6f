--
-- PostgreSQL database cluster dump
--

\restrict N3ZEz0sc2k85vr6u5dBNwum3p8f9REA6WVrvA8qNL2avWX7OY8NFcZQA42g4b7e

SET default_transaction_read_only = off;

SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;

--
-- Roles
--

CREATE ROLE erp4_app;
ALTER ROLE erp4_app WITH NOSUPERUSER INHERIT NOCREATEROLE NOCREATEDB LOGIN NOREPLICATION NOBYPASSRLS CONNECTION LIMIT 20;
CREATE ROLE erp4_readonly;
ALTER ROLE erp4_readonly WITH NOSUPERUSER INHERIT NOCREATEROLE NOCREATEDB NOLOGIN NOREPLICATION NOBYPASSRLS;
CREATE ROLE postgres;
ALTER ROLE postgres WITH SUPERUSER INHERIT CREATEROLE CREATEDB LOGIN REPLICATION BYPASSRLS PASSWORD 'SCRAM-SHA-256$4096:Sjq26pN2gbmy7nOe6AexTw==$PAuGOsBVtiuaabVDINqZ7VYIhm7fV5geBajF1fTK9Qc=:GafHSPMD4JqXuWsvuFoCF194faWDhi0bJBpDkIuro50=';

--
-- User Configurations
--


--
-- Role memberships
--

GRANT erp4_readonly TO erp4_app GRANTED BY postgres;






\unrestrict N3ZEz0sc2k85vr6u5dBNwum3p8f9REA6WVrvA8qNL2avWX7OY8NFcZQA42g4b7e

--
-- PostgreSQL database cluster dump complete
--

