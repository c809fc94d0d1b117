-- Schema of the MySQL / MariaDB storage of nacos-server.
--
-- Part 1 creates the tables of Nacos 2.x (2.4 layout) with the same names, columns, types and
-- keys, so this server can serve a database that Java Nacos wrote, and Java Nacos can read what
-- this server writes. Part 2 adds the tables only this server uses; Java Nacos ignores them.
--
-- Every table is created IF NOT EXISTS, so the file can be run on an empty database or on an
-- existing Nacos database (it then only adds what is missing):
--     mysql -u nacos -p nacos < conf/mysql-schema.sql
-- MySQL has no CREATE INDEX IF NOT EXISTS: run by hand a second time, the last statement fails
-- with "Duplicate key name", which is harmless. The server runs this same file itself at start
-- when nacos.db.schema.init=true, and skips indexes that already exist.
--
-- Character set: utf8mb4 with the binary collation, so keys compare case-sensitively (as
-- Nacos's utf8_bin) and 4-byte characters (emoji) fit. A database created by Nacos's own file
-- (utf8 / utf8_bin) works too, but cannot store 4-byte characters.
--
-- Statements are separated by a semicolon at the end of a line; the server splits on that, so
-- keep semicolons out of comments and string literals.

-- =============================================================================================
-- Part 1: Nacos 2.x tables
-- =============================================================================================

-- Formal configs. tenant_id is '' for the public namespace; md5 is the lowercase hex MD5 of the
-- UTF-8 content; gmt_* are datetimes in the session time zone (serverTimezone, UTC by default).
CREATE TABLE IF NOT EXISTS `config_info` (
  `id` bigint(20) NOT NULL AUTO_INCREMENT COMMENT 'id',
  `data_id` varchar(255) NOT NULL COMMENT 'data_id',
  `group_id` varchar(128) DEFAULT NULL COMMENT 'group_id',
  `content` longtext NOT NULL COMMENT 'content',
  `md5` varchar(32) DEFAULT NULL COMMENT 'md5',
  `gmt_create` datetime NOT NULL DEFAULT CURRENT_TIMESTAMP COMMENT 'created',
  `gmt_modified` datetime NOT NULL DEFAULT CURRENT_TIMESTAMP COMMENT 'modified',
  `src_user` text COMMENT 'source user',
  `src_ip` varchar(50) DEFAULT NULL COMMENT 'source ip',
  `app_name` varchar(128) DEFAULT NULL COMMENT 'app_name',
  `tenant_id` varchar(128) DEFAULT '' COMMENT 'namespace',
  `c_desc` varchar(256) DEFAULT NULL COMMENT 'description',
  `c_use` varchar(64) DEFAULT NULL COMMENT 'use',
  `effect` varchar(64) DEFAULT NULL COMMENT 'effect',
  `type` varchar(64) DEFAULT NULL COMMENT 'type',
  `c_schema` text COMMENT 'schema',
  `encrypted_data_key` varchar(1024) NOT NULL DEFAULT '' COMMENT 'encrypted data key',
  PRIMARY KEY (`id`),
  UNIQUE KEY `uk_configinfo_datagrouptenant` (`data_id`,`group_id`,`tenant_id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin COMMENT='config_info';

-- Aggregated configs (legacy; kept for compatibility, not used by this server).
CREATE TABLE IF NOT EXISTS `config_info_aggr` (
  `id` bigint(20) NOT NULL AUTO_INCREMENT COMMENT 'id',
  `data_id` varchar(255) NOT NULL COMMENT 'data_id',
  `group_id` varchar(128) NOT NULL COMMENT 'group_id',
  `datum_id` varchar(255) NOT NULL COMMENT 'datum_id',
  `content` longtext NOT NULL COMMENT 'content',
  `gmt_modified` datetime NOT NULL COMMENT 'modified',
  `app_name` varchar(128) DEFAULT NULL COMMENT 'app_name',
  `tenant_id` varchar(128) DEFAULT '' COMMENT 'namespace',
  PRIMARY KEY (`id`),
  UNIQUE KEY `uk_configinfoaggr_datagrouptenantdatum` (`data_id`,`group_id`,`tenant_id`,`datum_id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin COMMENT='config_info_aggr';

-- Beta (gray by client IP) variants. beta_ips is a comma-separated list.
CREATE TABLE IF NOT EXISTS `config_info_beta` (
  `id` bigint(20) NOT NULL AUTO_INCREMENT COMMENT 'id',
  `data_id` varchar(255) NOT NULL COMMENT 'data_id',
  `group_id` varchar(128) NOT NULL COMMENT 'group_id',
  `app_name` varchar(128) DEFAULT NULL COMMENT 'app_name',
  `content` longtext NOT NULL COMMENT 'content',
  `beta_ips` varchar(1024) DEFAULT NULL COMMENT 'beta ips',
  `md5` varchar(32) DEFAULT NULL COMMENT 'md5',
  `gmt_create` datetime NOT NULL DEFAULT CURRENT_TIMESTAMP COMMENT 'created',
  `gmt_modified` datetime NOT NULL DEFAULT CURRENT_TIMESTAMP COMMENT 'modified',
  `src_user` text COMMENT 'source user',
  `src_ip` varchar(50) DEFAULT NULL COMMENT 'source ip',
  `tenant_id` varchar(128) DEFAULT '' COMMENT 'namespace',
  `encrypted_data_key` varchar(1024) NOT NULL DEFAULT '' COMMENT 'encrypted data key',
  PRIMARY KEY (`id`),
  UNIQUE KEY `uk_configinfobeta_datagrouptenant` (`data_id`,`group_id`,`tenant_id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin COMMENT='config_info_beta';

-- Tag variants (no encrypted_data_key column in Nacos 2.x).
CREATE TABLE IF NOT EXISTS `config_info_tag` (
  `id` bigint(20) NOT NULL AUTO_INCREMENT COMMENT 'id',
  `data_id` varchar(255) NOT NULL COMMENT 'data_id',
  `group_id` varchar(128) NOT NULL COMMENT 'group_id',
  `tenant_id` varchar(128) DEFAULT '' COMMENT 'namespace',
  `tag_id` varchar(128) NOT NULL COMMENT 'tag_id',
  `app_name` varchar(128) DEFAULT NULL COMMENT 'app_name',
  `content` longtext NOT NULL COMMENT 'content',
  `md5` varchar(32) DEFAULT NULL COMMENT 'md5',
  `gmt_create` datetime NOT NULL DEFAULT CURRENT_TIMESTAMP COMMENT 'created',
  `gmt_modified` datetime NOT NULL DEFAULT CURRENT_TIMESTAMP COMMENT 'modified',
  `src_user` text COMMENT 'source user',
  `src_ip` varchar(50) DEFAULT NULL COMMENT 'source ip',
  PRIMARY KEY (`id`),
  UNIQUE KEY `uk_configinfotag_datagrouptenanttag` (`data_id`,`group_id`,`tenant_id`,`tag_id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin COMMENT='config_info_tag';

-- Config tags (config_tags on publish): one row per tag; id is config_info.id, tag_type ''.
CREATE TABLE IF NOT EXISTS `config_tags_relation` (
  `id` bigint(20) NOT NULL COMMENT 'config_info id',
  `tag_name` varchar(128) NOT NULL COMMENT 'tag_name',
  `tag_type` varchar(64) DEFAULT NULL COMMENT 'tag_type',
  `data_id` varchar(255) NOT NULL COMMENT 'data_id',
  `group_id` varchar(128) NOT NULL COMMENT 'group_id',
  `tenant_id` varchar(128) DEFAULT '' COMMENT 'namespace',
  `nid` bigint(20) NOT NULL AUTO_INCREMENT COMMENT 'nid',
  PRIMARY KEY (`nid`),
  UNIQUE KEY `uk_configtagrelation_configidtag` (`id`,`tag_name`,`tag_type`),
  KEY `idx_tenant_id` (`tenant_id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin COMMENT='config_tag_relation';

-- Capacity per group ('' = the whole cluster). 0 means "use the default".
CREATE TABLE IF NOT EXISTS `group_capacity` (
  `id` bigint(20) unsigned NOT NULL AUTO_INCREMENT COMMENT 'id',
  `group_id` varchar(128) NOT NULL DEFAULT '' COMMENT 'group id, empty for the cluster',
  `quota` int(10) unsigned NOT NULL DEFAULT '0' COMMENT 'quota, 0 = default',
  `usage` int(10) unsigned NOT NULL DEFAULT '0' COMMENT 'usage',
  `max_size` int(10) unsigned NOT NULL DEFAULT '0' COMMENT 'max content size, 0 = default',
  `max_aggr_count` int(10) unsigned NOT NULL DEFAULT '0' COMMENT 'max aggr count, 0 = default',
  `max_aggr_size` int(10) unsigned NOT NULL DEFAULT '0' COMMENT 'max aggr size, 0 = default',
  `max_history_count` int(10) unsigned NOT NULL DEFAULT '0' COMMENT 'max history count',
  `gmt_create` datetime NOT NULL DEFAULT CURRENT_TIMESTAMP COMMENT 'created',
  `gmt_modified` datetime NOT NULL DEFAULT CURRENT_TIMESTAMP COMMENT 'modified',
  PRIMARY KEY (`id`),
  UNIQUE KEY `uk_group_id` (`group_id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin COMMENT='group capacity';

-- Config history. id is the config_info id (0 for op_type I rows); nid is the history id. An I
-- row holds the new content, a U row the content before the update, a D row the deleted content.
CREATE TABLE IF NOT EXISTS `his_config_info` (
  `id` bigint(20) unsigned NOT NULL COMMENT 'config_info id, 0 for inserts',
  `nid` bigint(20) unsigned NOT NULL AUTO_INCREMENT COMMENT 'history id',
  `data_id` varchar(255) NOT NULL COMMENT 'data_id',
  `group_id` varchar(128) NOT NULL COMMENT 'group_id',
  `app_name` varchar(128) DEFAULT NULL COMMENT 'app_name',
  `content` longtext NOT NULL COMMENT 'content',
  `md5` varchar(32) DEFAULT NULL COMMENT 'md5',
  `gmt_create` datetime NOT NULL DEFAULT CURRENT_TIMESTAMP COMMENT 'created',
  `gmt_modified` datetime NOT NULL DEFAULT CURRENT_TIMESTAMP COMMENT 'operation time',
  `src_user` text COMMENT 'source user',
  `src_ip` varchar(50) DEFAULT NULL COMMENT 'source ip',
  `op_type` char(10) DEFAULT NULL COMMENT 'I, U or D',
  `tenant_id` varchar(128) DEFAULT '' COMMENT 'namespace',
  `encrypted_data_key` varchar(1024) NOT NULL DEFAULT '' COMMENT 'encrypted data key',
  PRIMARY KEY (`nid`),
  KEY `idx_gmt_create` (`gmt_create`),
  KEY `idx_gmt_modified` (`gmt_modified`),
  KEY `idx_did` (`data_id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin COMMENT='config history';

-- Capacity per namespace.
CREATE TABLE IF NOT EXISTS `tenant_capacity` (
  `id` bigint(20) unsigned NOT NULL AUTO_INCREMENT COMMENT 'id',
  `tenant_id` varchar(128) NOT NULL DEFAULT '' COMMENT 'namespace',
  `quota` int(10) unsigned NOT NULL DEFAULT '0' COMMENT 'quota, 0 = default',
  `usage` int(10) unsigned NOT NULL DEFAULT '0' COMMENT 'usage',
  `max_size` int(10) unsigned NOT NULL DEFAULT '0' COMMENT 'max content size, 0 = default',
  `max_aggr_count` int(10) unsigned NOT NULL DEFAULT '0' COMMENT 'max aggr count, 0 = default',
  `max_aggr_size` int(10) unsigned NOT NULL DEFAULT '0' COMMENT 'max aggr size, 0 = default',
  `max_history_count` int(10) unsigned NOT NULL DEFAULT '0' COMMENT 'max history count',
  `gmt_create` datetime NOT NULL DEFAULT CURRENT_TIMESTAMP COMMENT 'created',
  `gmt_modified` datetime NOT NULL DEFAULT CURRENT_TIMESTAMP COMMENT 'modified',
  PRIMARY KEY (`id`),
  UNIQUE KEY `uk_tenant_id` (`tenant_id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin COMMENT='tenant capacity';

-- Custom namespaces. kp is always '1'; gmt_* are epoch milliseconds. The public namespace has
-- no row.
CREATE TABLE IF NOT EXISTS `tenant_info` (
  `id` bigint(20) NOT NULL AUTO_INCREMENT COMMENT 'id',
  `kp` varchar(128) NOT NULL COMMENT 'kp',
  `tenant_id` varchar(128) DEFAULT '' COMMENT 'namespace id',
  `tenant_name` varchar(128) DEFAULT '' COMMENT 'namespace name',
  `tenant_desc` varchar(256) DEFAULT NULL COMMENT 'namespace description',
  `create_source` varchar(32) DEFAULT NULL COMMENT 'create source',
  `gmt_create` bigint(20) NOT NULL COMMENT 'created, epoch ms',
  `gmt_modified` bigint(20) NOT NULL COMMENT 'modified, epoch ms',
  PRIMARY KEY (`id`),
  UNIQUE KEY `uk_tenant_info_kptenantid` (`kp`,`tenant_id`),
  KEY `idx_tenant_id` (`tenant_id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin COMMENT='tenant_info';

-- Users of the default auth plugin (password is a BCrypt hash).
CREATE TABLE IF NOT EXISTS `users` (
  `username` varchar(50) NOT NULL PRIMARY KEY COMMENT 'username',
  `password` varchar(500) NOT NULL COMMENT 'password hash',
  `enabled` boolean NOT NULL COMMENT 'enabled'
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS `roles` (
  `username` varchar(50) NOT NULL COMMENT 'username',
  `role` varchar(50) NOT NULL COMMENT 'role',
  UNIQUE INDEX `idx_user_role` (`username` ASC, `role` ASC) USING BTREE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS `permissions` (
  `role` varchar(50) NOT NULL COMMENT 'role',
  `resource` varchar(128) NOT NULL COMMENT 'resource',
  `action` varchar(8) NOT NULL COMMENT 'r, w or rw',
  UNIQUE INDEX `uk_role_permission` (`role`,`resource`,`action`) USING BTREE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- =============================================================================================
-- Part 2: nacos-server extensions (not in Nacos; Java Nacos ignores these tables)
-- =============================================================================================

-- The change index behind "what changed since T" (cache refresh across nodes): one row per
-- config key, moved to the time of its latest formal or gray write or delete, in epoch ms of
-- the database clock (one clock for every node). Indexed by time, so the scan is cheap.
CREATE TABLE IF NOT EXISTS `ext_config_change` (
  `id` bigint(20) NOT NULL AUTO_INCREMENT COMMENT 'id',
  `data_id` varchar(255) NOT NULL COMMENT 'data_id',
  `group_id` varchar(128) NOT NULL COMMENT 'group_id',
  `tenant_id` varchar(128) NOT NULL DEFAULT '' COMMENT 'namespace',
  `modified_ms` bigint(20) NOT NULL COMMENT 'time of the latest change, epoch ms',
  PRIMARY KEY (`id`),
  UNIQUE KEY `uk_ext_config_change_key` (`data_id`,`group_id`,`tenant_id`),
  KEY `idx_ext_config_change_time` (`modified_ms`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin COMMENT='config change index';

-- Durable services (Nacos keeps these in its JRaft metadata, not in MySQL). namespace_id is
-- naming's spelling ('public' for the default namespace). metadata and clusters are JSON.
CREATE TABLE IF NOT EXISTS `ext_service` (
  `id` bigint(20) NOT NULL AUTO_INCREMENT COMMENT 'id',
  `namespace_id` varchar(128) NOT NULL COMMENT 'namespace',
  `group_name` varchar(128) NOT NULL COMMENT 'group',
  `service_name` varchar(255) NOT NULL COMMENT 'service name',
  `ephemeral` tinyint(1) NOT NULL COMMENT 'holds ephemeral instances',
  `protect_threshold` double NOT NULL DEFAULT '0' COMMENT 'protect threshold',
  `metadata` longtext NOT NULL COMMENT 'JSON object',
  `selector` text NOT NULL COMMENT 'selector JSON',
  `clusters` longtext NOT NULL COMMENT 'JSON object of cluster settings',
  `gmt_create` bigint(20) NOT NULL COMMENT 'created, epoch ms',
  `gmt_modified` bigint(20) NOT NULL COMMENT 'modified, epoch ms',
  PRIMARY KEY (`id`),
  UNIQUE KEY `uk_ext_service_key` (`namespace_id`,`group_name`,`service_name`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin COMMENT='durable services';

-- Persistent (non-ephemeral) instances, keyed by (service, ip, port, cluster).
CREATE TABLE IF NOT EXISTS `ext_instance` (
  `id` bigint(20) NOT NULL AUTO_INCREMENT COMMENT 'id',
  `service_id` bigint(20) NOT NULL COMMENT 'ext_service id',
  `ip` varchar(255) NOT NULL COMMENT 'ip or host name',
  `port` int(10) unsigned NOT NULL COMMENT 'port',
  `cluster_name` varchar(128) NOT NULL COMMENT 'cluster',
  `weight` double NOT NULL COMMENT 'weight',
  `healthy` tinyint(1) NOT NULL COMMENT 'healthy',
  `enabled` tinyint(1) NOT NULL COMMENT 'enabled',
  `ephemeral` tinyint(1) NOT NULL COMMENT 'ephemeral flag as registered',
  `metadata` longtext NOT NULL COMMENT 'JSON object',
  `instance_id` varchar(512) DEFAULT NULL COMMENT 'client-supplied instance id',
  PRIMARY KEY (`id`),
  UNIQUE KEY `uk_ext_instance_address` (`service_id`,`ip`,`port`,`cluster_name`),
  CONSTRAINT `fk_ext_instance_service` FOREIGN KEY (`service_id`) REFERENCES `ext_service` (`id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin COMMENT='persistent instances';

-- Extra index on a Nacos table: history rows by config id (previous_history). On an existing
-- database the server adds it at start when nacos.db.schema.init=true; it is only a speed-up.
CREATE INDEX `idx_ext_his_config_id` ON `his_config_info` (`id`);
