package sidecar.services;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.CountDownLatch;
import org.neo4j.configuration.GraphDatabaseInternalSettings;
import org.neo4j.configuration.GraphDatabaseSettings;
import org.neo4j.configuration.connectors.BoltConnector;
import org.neo4j.configuration.connectors.BoltConnectorInternalSettings;
import org.neo4j.configuration.connectors.HttpConnector;
import org.neo4j.configuration.connectors.HttpsConnector;
import org.neo4j.configuration.helpers.SocketAddress;
import org.neo4j.dbms.api.DatabaseManagementService;
import org.neo4j.dbms.api.DatabaseManagementServiceBuilder;
import org.neo4j.graphdb.GraphDatabaseService;
import org.neo4j.graphdb.Result;
import org.neo4j.graphdb.Transaction;

/**
 * A throw-away Neo4j (community, embedded) DBMS for local tests and CI, started by
 * scripts/services/neo4j.sh. Bolt only, loopback only, auth disabled, no HTTP.
 *
 * <p>Usage: {@code Neo4jTestServer [--warmup] <home-dir> <bolt-host> <bolt-port>}.
 *
 * <ul>
 *   <li>Normal mode: with the system property {@code sidecar.pidfile} set, writes its process id
 *       there first; prints one line starting with {@code READY} once the default database
 *       answers {@code RETURN 1}; shuts the DBMS down cleanly on SIGTERM/SIGINT (shutdown hook).
 *   <li>{@code --warmup}: starts, answers one query, shuts down and exits 0. The build runs it
 *       once with {@code -XX:ArchiveClassesAtExit} to record a class-data-sharing archive that
 *       roughly halves later start-up times.
 * </ul>
 */
public final class Neo4jTestServer {
  private Neo4jTestServer() {}

  public static void main(String[] args) throws InterruptedException, IOException {
    boolean warmup = args.length > 0 && args[0].equals("--warmup");
    int first = warmup ? 1 : 0;
    if (args.length - first != 3) {
      System.err.println("usage: Neo4jTestServer [--warmup] <home-dir> <bolt-host> <bolt-port>");
      System.exit(2);
    }
    String pidfile = System.getProperty("sidecar.pidfile");
    if (!warmup && pidfile != null && !pidfile.isEmpty()) {
      Files.writeString(Path.of(pidfile), ProcessHandle.current().pid() + "\n");
    }
    Path home = Path.of(args[first]).toAbsolutePath();
    SocketAddress bolt = new SocketAddress(args[first + 1], Integer.parseInt(args[first + 2]));

    DatabaseManagementService dbms =
        new DatabaseManagementServiceBuilder(home)
            .setConfig(BoltConnector.enabled, true)
            .setConfig(BoltConnector.listen_address, bolt)
            .setConfig(BoltConnector.advertised_address, bolt)
            .setConfig(BoltConnector.encryption_level, BoltConnector.EncryptionLevel.DISABLED)
            .setConfig(HttpConnector.enabled, false)
            .setConfig(HttpsConnector.enabled, false)
            .setConfig(GraphDatabaseSettings.auth_enabled, false)
            .setConfig(GraphDatabaseSettings.udc_enabled, false)
            .setConfig(GraphDatabaseSettings.pagecache_memory, 128L * 1024 * 1024)
            .setConfig(GraphDatabaseSettings.preallocate_logical_logs, false)
            .setConfig(GraphDatabaseSettings.preallocate_store_files, false)
            // A test server has nothing to drain: stop in about a second instead of ~10 s.
            .setConfig(GraphDatabaseInternalSettings.netty_server_shutdown_quiet_period, 0)
            .setConfig(
                GraphDatabaseInternalSettings.netty_server_shutdown_timeout, Duration.ofSeconds(2))
            .setConfig(
                BoltConnectorInternalSettings.thread_pool_shutdown_wait_time, Duration.ofSeconds(1))
            .setConfig(
                BoltConnectorInternalSettings.connection_shutdown_wait_time, Duration.ofSeconds(1))
            .build();

    if (warmup) {
      try {
        query(dbms);
      } finally {
        dbms.shutdown();
      }
      System.out.println("WARMUP DONE");
      System.exit(0);
    }

    CountDownLatch stopped = new CountDownLatch(1);
    Runtime.getRuntime()
        .addShutdownHook(
            new Thread(
                () -> {
                  System.out.println("STOPPING: shutting down the DBMS");
                  try {
                    dbms.shutdown();
                  } finally {
                    System.out.println("STOPPED");
                    System.out.flush();
                    stopped.countDown();
                  }
                },
                "neo4j-test-server-shutdown"));

    query(dbms);
    System.out.println("READY bolt://" + bolt + " home=" + home);
    System.out.flush();
    stopped.await();
  }

  private static void query(DatabaseManagementService dbms) {
    GraphDatabaseService db = dbms.database(GraphDatabaseSettings.DEFAULT_DATABASE_NAME);
    try (Transaction tx = db.beginTx();
        Result result = tx.execute("RETURN 1 AS one")) {
      result.resultAsString();
      tx.commit();
    }
  }
}
