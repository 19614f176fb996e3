DROP TABLE identity_mail_log;
