DROP TABLE commission_delivery_files;
DROP TABLE commission_request_history;
DROP TABLE commission_requests;
DROP TABLE commissions;
