'use strict'

// `npm run demo`: save, load and lock on the in-memory default store, with
// two caches playing two actionhero nodes that share one store.

const { Cache } = require('..')

const nodeA = new Cache({ lockName: 'node-a' })
const nodeB = new Cache({ lockName: 'node-b' })

function step (text) { console.log(`- ${text}`) }

nodeA.save('greeting', { hello: 'world' }, 60000, (error, saved) => {
  if (error) throw error
  step(`node-a saves greeting = {hello: "world"} for 60 s -> ${saved}`)

  nodeB.load('greeting', (error, value, expireTimestamp, createdAt, lastReadAt) => {
    if (error) throw error
    step(`node-b loads greeting -> ${JSON.stringify(value)} (expires in ${Math.round((expireTimestamp - Date.now()) / 1000)} s, last read: ${lastReadAt})`)

    nodeA.lock('greeting', 5000, (error, locked) => {
      if (error) throw error
      step(`node-a locks greeting for 5 s -> ${locked}`)

      nodeB.save('greeting', 'overwritten?', (error) => {
        step(`node-b tries to save over node-a's lock -> ${error.message} (${error.code})`)

        nodeB.load('greeting', { retry: 1000 }, (error, value) => {
          if (error) throw error
          step(`node-b loads with retry: 1000 and waits for node-a's unlock -> ${JSON.stringify(value)}`)
          nodeA.load('greeting').then(({ lastReadAt }) => {
            step(`the promise form works too: node-a loads, last read at ${new Date(lastReadAt).toISOString()}`)
            return Promise.all([nodeA.close(), nodeB.close()])
          }).then(() => step('done'))
        })

        setTimeout(() => {
          nodeA.unlock('greeting', (error, unlocked) => {
            if (error) throw error
            step(`node-a unlocks greeting after 200 ms -> ${unlocked}`)
          })
        }, 200)
      })
    })
  })
})
