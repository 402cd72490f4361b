import DeerFlow
import PostgresNIO
