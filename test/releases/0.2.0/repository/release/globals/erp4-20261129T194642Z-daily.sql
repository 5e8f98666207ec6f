--
-- PostgreSQL database cluster dump
--

\restrict 9uj308rVmBqeLiFxQf9ybZpJLlJCI7LHssvjxZuS3dDLKZRYxzefmq8aKeDALp5

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
ALTER ROLE postgres WITH SUPERUSER INHERIT CREATEROLE CREATEDB LOGIN REPLICATION BYPASSRLS PASSWORD 'SCRAM-SHA-256$4096:PXqT+S6zSU7z0xq9PHly8g==$mSzLfWMwPutDewWxBZCjA2sE/Kn2KGkGUjBLey7kkN8=:liPpFulshejcF1eaiX46MMEZhgN1pCmhIuQhlAV81VM=';

--
-- User Configurations
--


--
-- Role memberships
--

GRANT erp4_readonly TO erp4_app GRANTED BY postgres;






\unrestrict 9uj308rVmBqeLiFxQf9ybZpJLlJCI7LHssvjxZuS3dDLKZRYxzefmq8aKeDALp5

--
-- PostgreSQL database cluster dump complete
--

